#include "proxy/connect/env_tokens.hpp"

#include <gtest/gtest.h>

namespace lpk::proxy {
namespace {

EnvTokenLookup demo_lookup() {
  EnvTokenLookup lookup;
  lookup.files_root = "/run/lpk/s1/files";
  lookup.service_address = [](const std::string& name,
                              const std::string& ns) -> std::optional<std::string> {
    if (name == "redis" && (ns.empty() || ns == "demo")) return "127.77.3.4";
    if (name == "web" && ns == "demo") return "127.77.3.5";
    return std::nullopt;
  };
  return lookup;
}

std::string expanded(const std::string& value) {
  auto out = expand_env_tokens(value, demo_lookup());
  return out ? *out : "error: " + out.error().message;
}

TEST(EnvTokens, FillsInServicesAndFiles) {
  EXPECT_EQ(expanded("redis://${service:redis}:6379/0"), "redis://127.77.3.4:6379/0");
  EXPECT_EQ(expanded("${service:redis.address}"), "127.77.3.4");
  EXPECT_EQ(expanded("${service:redis.demo.address}"), "127.77.3.4");
  EXPECT_EQ(expanded("http://${service:web.demo:80}/x"), "http://127.77.3.5:80/x");
  EXPECT_EQ(expanded("${files:/etc/demo/greeting}"), "/run/lpk/s1/files/etc/demo/greeting");
  EXPECT_EQ(expanded("a ${service:redis} b ${service:web.demo}"), "a 127.77.3.4 b 127.77.3.5");
  EXPECT_EQ(expanded("plain $HOME $${service:redis}"), "plain $HOME ${service:redis}");
}

TEST(EnvTokens, MalformedTokensAreProblemsNamingThem) {
  EXPECT_EQ(expanded("${service:web}"),
            "error: ${service:web}: lpk maps no such service (a service of another namespace "
            "needs --also-namespace / alsoNamespaces)");
  EXPECT_EQ(expanded("${service:redis:0}"),
            "error: ${service:redis:0}: the port must be a number from 1 to 65535");
  EXPECT_NE(expanded("${service:Redis}").find("lowercase"), std::string::npos);
  EXPECT_NE(expanded("${files:etc/x}").find("ABSOLUTE"), std::string::npos);
  EXPECT_NE(expanded("${files:/a/../b}").find("ABSOLUTE"), std::string::npos);
  EXPECT_NE(expanded("${volume:x}").find("unknown token"), std::string::npos);
  EXPECT_EQ(expanded("x ${service:redis"), "error: ${service:redis}: has no closing }");
  EXPECT_TRUE(check_env_tokens("${service:anything.ns:443}"));
  EXPECT_FALSE(check_env_tokens("${service:}"));
}

TEST(EnvTokens, OverridesLayInOrderAndSkipWhatCannotBeFilled) {
  std::map<std::string, std::string> env{{"KEEP", "k"}, {"REDIS", "old"}};
  auto problems = lay_env_overrides(
      {{"REDIS", "${service:redis}"}, {"WEB", "${service:web}"}, {"A", "1"}, {"A", "2"}},
      demo_lookup(), env);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].rfind("env WEB: ${service:web}: lpk maps no such service", 0), 0u);
  EXPECT_EQ(env, (std::map<std::string, std::string>{
                     {"A", "2"}, {"KEEP", "k"}, {"REDIS", "127.77.3.4"}}));
}

}  // namespace
}  // namespace lpk::proxy
