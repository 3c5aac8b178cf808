#include "tools/kubesim/patch.hpp"

#include <gtest/gtest.h>

namespace lpk::kubesim {
namespace {

// The Deployment of "Update API Objects in Place Using kubectl patch" (kubernetes.io docs).
json patch_demo() {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patch-demo"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}},
      "template": {"metadata": {"labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "patch-demo-ctr", "image": "nginx"}],
                 "tolerations": [{"effect": "NoSchedule", "key": "dedicated",
                                  "value": "test-team"}]}}}})");
}

TEST(StrategicMergePatch, AddsContainerByNameAsInTheDocs) {
  json patch = json::parse(R"({"spec":{"template":{"spec":{"containers":[
    {"name":"patch-demo-ctr-2","image":"redis"}]}}}})");
  json out = apply_strategic_merge_patch(patch_demo(), patch);
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0]["name"], "patch-demo-ctr");
  EXPECT_EQ(cs[0]["image"], "nginx");
  EXPECT_EQ(cs[1]["name"], "patch-demo-ctr-2");
  EXPECT_EQ(cs[1]["image"], "redis");
}

TEST(StrategicMergePatch, ReplacesTolerationsWhichHaveNoMergeKeyAsInTheDocs) {
  json patch = json::parse(R"({"spec":{"template":{"spec":{"tolerations":[
    {"effect":"NoSchedule","key":"disktype","value":"ssd"}]}}}})");
  json out = apply_strategic_merge_patch(patch_demo(), patch);
  const json& t = out["spec"]["template"]["spec"]["tolerations"];
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]["key"], "disktype");
}

TEST(StrategicMergePatch, ChangesImageAndMergesEnvByName) {
  json base = patch_demo();
  base["spec"]["template"]["spec"]["containers"][0]["env"] =
      json::parse(R"([{"name":"A","value":"1"},{"name":"B","value":"2"}])");
  json patch = json::parse(R"({"spec":{"template":{"spec":{"containers":[
    {"name":"patch-demo-ctr","image":"nginx:1.27","env":[{"name":"B","value":"3"},
     {"name":"C","value":"4"}]}]}}}})");
  json out = apply_strategic_merge_patch(base, patch);
  const json& c = out["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "nginx:1.27");
  ASSERT_EQ(c["env"].size(), 3u);
  EXPECT_EQ(c["env"][0], json::parse(R"({"name":"A","value":"1"})"));
  EXPECT_EQ(c["env"][1], json::parse(R"({"name":"B","value":"3"})"));
  EXPECT_EQ(c["env"][2], json::parse(R"({"name":"C","value":"4"})"));
}

TEST(StrategicMergePatch, MergesVolumesVolumeMountsAndContainerPorts) {
  json base = json::parse(R"({"spec":{"volumes":[{"name":"a","emptyDir":{}}],
    "containers":[{"name":"c","image":"x","volumeMounts":[{"name":"a","mountPath":"/a"}],
    "ports":[{"containerPort":80,"protocol":"TCP"}]}]}})");
  json patch = json::parse(R"({"spec":{"volumes":[{"name":"b","configMap":{"name":"cm"}}],
    "containers":[{"name":"c","volumeMounts":[{"name":"a","mountPath":"/aa"},
    {"name":"b","mountPath":"/b"}],"ports":[{"containerPort":80,"name":"http"},
    {"containerPort":443}]}]}})");
  json out = apply_strategic_merge_patch(base, patch);
  EXPECT_EQ(out["spec"]["volumes"].size(), 2u);
  const json& c = out["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "x");
  // volumeMounts merge on mountPath (k8s core/v1 patchMergeKey), not name: /aa is a new mount.
  ASSERT_EQ(c["volumeMounts"].size(), 3u);
  EXPECT_EQ(c["volumeMounts"][0], json::parse(R"({"name":"a","mountPath":"/a"})"));
  EXPECT_EQ(c["volumeMounts"][1]["mountPath"], "/aa");
  ASSERT_EQ(c["ports"].size(), 2u);
  EXPECT_EQ(c["ports"][0], json::parse(R"({"containerPort":80,"protocol":"TCP","name":"http"})"));
}

TEST(StrategicMergePatch, ServicePortsMergeOnPort) {
  json base = json::parse(R"({"spec":{"ports":[{"port":80,"name":"http"},{"port":443}]}})");
  json patch = json::parse(R"({"spec":{"ports":[{"port":443,"name":"https"}]}})");
  json out = apply_strategic_merge_patch(base, patch);
  ASSERT_EQ(out["spec"]["ports"].size(), 2u);
  EXPECT_EQ(out["spec"]["ports"][1]["name"], "https");
}

TEST(StrategicMergePatch, NullDeletesAndPlainListsAreReplaced) {
  json base = json::parse(R"({"spec":{"containers":[{"name":"app","image":"i",
    "command":["a","b"],"args":["x"]}]}})");
  json patch = json::parse(R"({"spec":{"containers":[{"name":"app","command":["sleep","inf"],
    "args":null}]}})");
  json out = apply_strategic_merge_patch(base, patch);
  const json& c = out["spec"]["containers"][0];
  EXPECT_EQ(c["command"], json::parse(R"(["sleep","inf"])"));
  EXPECT_FALSE(c.contains("args"));
}

TEST(StrategicMergePatch, PatchDeleteDirectiveRemovesByKey) {
  // "Notes on the strategic merge patch" (community/contributors/devel/sig-api-machinery).
  json base = json::parse(R"({"containers":[{"name":"nginx","image":"nginx-1.0"},
    {"name":"log-tailer","image":"tailer"}]})");
  json patch = json::parse(R"({"containers":[{"name":"log-tailer","$patch":"delete"}]})");
  json out = apply_strategic_merge_patch(base, patch);
  ASSERT_EQ(out["containers"].size(), 1u);
  EXPECT_EQ(out["containers"][0]["name"], "nginx");
}

TEST(StrategicMergePatch, PatchReplaceDirectiveOnListAndMap) {
  json base = json::parse(R"({"containers":[{"name":"nginx","image":"nginx-1.0"}],
    "metadata":{"labels":{"a":"1","b":"2"}}})");
  json patch = json::parse(R"({"containers":[{"name":"new","image":"n"},{"$patch":"replace"}],
    "metadata":{"labels":{"c":"3","$patch":"replace"}}})");
  json out = apply_strategic_merge_patch(base, patch);
  EXPECT_EQ(out["containers"], json::parse(R"([{"name":"new","image":"n"}])"));
  EXPECT_EQ(out["metadata"]["labels"], json::parse(R"({"c":"3"})"));
}

TEST(StrategicMergePatch, RetainKeysAsInTheDocsStrategyExample) {
  // The "Use strategic merge patch to update a Deployment using the retainKeys strategy" case.
  json base = json::parse(R"({"spec":{"strategy":{"type":"RollingUpdate",
    "rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"}}}})");
  json patch = json::parse(R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})");
  json out = apply_strategic_merge_patch(base, patch);
  EXPECT_EQ(out["spec"]["strategy"], json::parse(R"({"type":"Recreate"})"));
}

TEST(StrategicMergePatch, SetElementOrderAndDeleteFromPrimitiveList) {
  json base = json::parse(R"({"containers":[{"name":"a"},{"name":"b"}],"finalizers":["x","y"]})");
  json patch = json::parse(R"({"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],
    "$deleteFromPrimitiveList/finalizers":["x"]})");
  json out = apply_strategic_merge_patch(base, patch);
  EXPECT_EQ(out["containers"], json::parse(R"([{"name":"b"},{"name":"a"}])"));
  EXPECT_EQ(out["finalizers"], json::parse(R"(["y"])"));
  EXPECT_FALSE(out.contains("$setElementOrder/containers"));
}

TEST(StrategicMergePatch, MissingMergeKeyIsAnError) {
  json base = json::parse(R"({"containers":[{"name":"a"}]})");
  EXPECT_THROW(apply_strategic_merge_patch(base, json::parse(R"({"containers":[{"image":"x"}]})")),
               std::invalid_argument);
}

TEST(MergePatch, ReplacesListsWholeAsInTheDocs) {
  json patch = json::parse(R"({"spec":{"template":{"spec":{"containers":[
    {"name":"patch-demo-ctr-3","image":"gcr.io/google-samples/hello-app:2.0"}]}}}})");
  json out = apply_merge_patch(patch_demo(), patch);
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0]["name"], "patch-demo-ctr-3");
  EXPECT_EQ(out["spec"]["replicas"], 2);
}

TEST(MergePatch, Rfc7386Example) {
  json target = json::parse(R"({"title":"Goodbye!","author":{"givenName":"John",
    "familyName":"Doe"},"tags":["example","sample"],"content":"This will be unchanged"})");
  json patch = json::parse(R"({"title":"Hello!","phoneNumber":"+01-123-456-7890",
    "author":{"familyName":null},"tags":["example"]})");
  json want = json::parse(R"({"title":"Hello!","author":{"givenName":"John"},
    "tags":["example"],"content":"This will be unchanged","phoneNumber":"+01-123-456-7890"})");
  EXPECT_EQ(apply_merge_patch(target, patch), want);
}

TEST(JsonPatch, K8sNotesExampleAddReplaceAndTest) {
  json ops = json::parse(R"([
    {"op":"test","path":"/spec/template/spec/containers/0/name","value":"patch-demo-ctr"},
    {"op":"replace","path":"/spec/template/spec/containers/0/image","value":"img:2"},
    {"op":"add","path":"/spec/template/spec/containers/0/command","value":["sleep","inf"]},
    {"op":"remove","path":"/spec/template/spec/tolerations"}])");
  json out = apply_json_patch(patch_demo(), ops);
  const json& c = out["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "img:2");
  EXPECT_EQ(c["command"], json::parse(R"(["sleep","inf"])"));
  EXPECT_FALSE(out["spec"]["template"]["spec"].contains("tolerations"));
}

TEST(JsonPatch, FailedTestAndMissingPathAreErrors) {
  json bad_test = json::parse(R"([{"op":"test","path":"/spec/replicas","value":5}])");
  EXPECT_THROW(apply_json_patch(patch_demo(), bad_test), std::invalid_argument);
  json missing = json::parse(R"([{"op":"replace","path":"/spec/nope/x","value":1}])");
  EXPECT_THROW(apply_json_patch(patch_demo(), missing), std::invalid_argument);
  EXPECT_THROW(apply_json_patch(patch_demo(), json::object()), std::invalid_argument);
}

}  // namespace
}  // namespace lpk::kubesim
