#include "tools/kubesim/apply.hpp"

#include <gtest/gtest.h>

#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {
namespace {

json deployment(int replicas, const std::string& image) {
  json d = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}})");
  d["spec"]["replicas"] = replicas;
  d["spec"]["template"]["spec"]["containers"][0]["image"] = image;
  return d;
}

const ApplyRequest kA{"a", false, "apps/v1"};
const ApplyRequest kB{"b", false, "apps/v1"};

// FieldsV1 as the apiserver writes it: containers keyed by name, "." for the item itself.
TEST(ServerSideApply, FieldsV1KeysListItemsByMergeKey) {
  json out = server_side_apply(nullptr, deployment(2, "nginx:1"), kA);
  json v1 = out["metadata"]["managedFields"][0]["fieldsV1"];
  json want = json::parse(R"({"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":
    {"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:name":{}}}}}}})");
  EXPECT_EQ(v1, want);
  EXPECT_EQ(parse_fields_v1(v1), fields_of(deployment(2, "nginx:1")));
  EXPECT_EQ(out["metadata"]["managedFields"][0]["operation"], "Apply");
}

TEST(ServerSideApply, ChangingAnotherManagersFieldConflictsUnlessForced) {
  json live = server_side_apply(nullptr, deployment(2, "nginx:1"), kA);
  try {
    server_side_apply(live, deployment(2, "nginx:2"), kB);
    FAIL() << "no conflict";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 409);
    EXPECT_STREQ(e.what(),
                 "Apply failed with 1 conflict: conflict with \"a\": "
                 ".spec.template.spec.containers[name=\"app\"].image");
  }
  // Same values are shared; force moves the changed field to b.
  EXPECT_NO_THROW(server_side_apply(live, deployment(2, "nginx:1"), kB));
  json out = server_side_apply(live, deployment(2, "nginx:2"), {"b", true, "apps/v1"});
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
  FieldSet a = parse_fields_v1(out["metadata"]["managedFields"][0]["fieldsV1"]);
  EXPECT_FALSE(a.count(FieldPath{"f:spec", "f:template", "f:spec", "f:containers",
                                 "k:{\"name\":\"app\"}", "f:image"}));
  EXPECT_TRUE(a.count(FieldPath{"f:spec", "f:replicas"}));
}

TEST(ServerSideApply, AFieldNoLongerAppliedIsRemovedUnlessShared) {
  json cfg = deployment(2, "nginx:1");
  cfg["metadata"]["labels"] = {{"x", "1"}};
  json live = server_side_apply(nullptr, cfg, kA);
  json out = server_side_apply(live, deployment(2, "nginx:1"), kA);
  EXPECT_FALSE(out["metadata"].contains("labels") && out["metadata"]["labels"].contains("x"));
  json shared = server_side_apply(live, cfg, kB);
  out = server_side_apply(shared, deployment(2, "nginx:1"), kA);
  EXPECT_EQ(out["metadata"]["labels"]["x"], "1");
}

// A create owns every field; a later write owns what it changed, taken from the others.
TEST(ServerSideApply, UpdatesRecordWhatTheyChanged) {
  json created = record_update(nullptr, deployment(2, "nginx:1"), "kubectl-create", "apps/v1");
  json live = server_side_apply(created, deployment(2, "nginx:1"), kA);  // same values: shared
  json next = live;
  next["spec"]["replicas"] = 3;
  json out = record_update(live, next, "kubectl-edit", "apps/v1");
  const json& mf = out["metadata"]["managedFields"];
  ASSERT_EQ(mf.size(), 3u);
  EXPECT_EQ(mf[2]["manager"], "kubectl-edit");
  EXPECT_EQ(mf[2]["operation"], "Update");
  EXPECT_EQ(mf[2]["fieldsV1"], json::parse(R"({"f:spec":{"f:replicas":{}}})"));
  EXPECT_FALSE(parse_fields_v1(mf[0]["fieldsV1"]).count(FieldPath{"f:spec", "f:replicas"}));
  try {
    server_side_apply(out, deployment(2, "nginx:1"), kA);
    FAIL() << "no conflict";
  } catch (const ApiError& e) {
    EXPECT_EQ(
        std::string(e.what()).rfind(
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1 at ", 0),
        0u)
        << e.what();
  }
}

}  // namespace
}  // namespace lpk::kubesim
