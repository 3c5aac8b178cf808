#include "tools/kubesim/selectors.hpp"

#include <gtest/gtest.h>

namespace lpk::kubesim {
namespace {

// Examples from "Labels and Selectors" (kubernetes.io/docs/concepts/overview/working-with-objects).
const json kProdFront = {{"environment", "production"}, {"tier", "frontend"}};
const json kProdBack = {{"environment", "production"}, {"tier", "backend"}, {"partition", "a"}};
const json kQa = {{"environment", "qa"}};

bool sel(const std::string& s, const json& labels) {
  auto p = LabelSelector::parse(s);
  EXPECT_TRUE(p.has_value()) << s;
  return p && p->matches(labels);
}

TEST(LabelSelector, EqualityBasedFromTheDocs) {
  EXPECT_TRUE(sel("environment = production", kProdFront));
  EXPECT_FALSE(sel("environment = production", kQa));
  EXPECT_TRUE(sel("environment=production,tier!=frontend", kProdBack));
  EXPECT_FALSE(sel("environment=production,tier!=frontend", kProdFront));
  EXPECT_TRUE(sel("environment==qa", kQa));
  EXPECT_TRUE(sel("tier!=frontend", kQa));  // != also selects objects without the key
}

TEST(LabelSelector, SetBasedFromTheDocs) {
  EXPECT_TRUE(sel("environment in (production, qa)", kQa));
  EXPECT_FALSE(sel("environment in (production)", kQa));
  EXPECT_TRUE(sel("tier notin (frontend, backend)", kQa));
  EXPECT_FALSE(sel("tier notin (frontend, backend)", kProdBack));
  EXPECT_TRUE(sel("partition", kProdBack));
  EXPECT_FALSE(sel("partition", kProdFront));
  EXPECT_TRUE(sel("!partition", kProdFront));
  EXPECT_TRUE(sel("partition in (customerA, a),environment!=qa", kProdBack));
  EXPECT_TRUE(sel("", kQa));
}

TEST(LabelSelector, RejectsBadSyntax) {
  std::string why;
  EXPECT_FALSE(LabelSelector::parse("a in b", &why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(LabelSelector::parse("a=b c=d", &why));
  EXPECT_FALSE(LabelSelector::parse("=x", &why));
}

TEST(LabelSelector, FromJsonMatchLabelsAndExpressions) {
  json s = json::parse(R"({"matchLabels":{"component":"redis"},"matchExpressions":[
    {"key":"tier","operator":"In","values":["cache"]},
    {"key":"environment","operator":"NotIn","values":["dev"]}]})");
  auto p = LabelSelector::from_json(s);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->matches({{"component", "redis"}, {"tier", "cache"}}));
  EXPECT_FALSE(p->matches({{"component", "redis"}, {"tier", "cache"}, {"environment", "dev"}}));
  EXPECT_FALSE(p->matches({{"component", "redis"}}));
  EXPECT_FALSE(LabelSelector::from_json(json::parse(R"({"matchExpressions":[
    {"key":"a","operator":"Bogus"}]})")));
}

TEST(FieldSelector, MetadataNameAndUnsupportedFields) {
  std::string why;
  auto f = parse_field_selector("metadata.name=web,status.phase!=Failed",
                                {"metadata.name", "status.phase"}, &why);
  ASSERT_TRUE(f);
  json pod = {{"metadata", {{"name", "web"}}}, {"status", {{"phase", "Running"}}}};
  EXPECT_TRUE(fields_match(*f, pod));
  pod["status"]["phase"] = "Failed";
  EXPECT_FALSE(fields_match(*f, pod));
  EXPECT_FALSE(parse_field_selector("spec.foo=x", {"metadata.name"}, &why));
  EXPECT_EQ(why, "field label not supported: spec.foo");
}

}  // namespace
}  // namespace lpk::kubesim
