#include "tools/kubesim/runtime/image_store.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/temp_dir.hpp"
#include "tools/kubesim/runtime/env.hpp"
#include "tools/kubesim/runtime/oci_runtime.hpp"

namespace lpk::kubesim {
namespace {

TEST(NormalizeReference, DropsDockerHubPrefixesAndDefaultsTheTag) {
  EXPECT_EQ(normalize_reference("nginx"), "nginx:latest");
  EXPECT_EQ(normalize_reference("docker.io/library/redis:7"), "redis:7");
  EXPECT_EQ(normalize_reference("docker.io/team/app"), "team/app:latest");
  EXPECT_EQ(normalize_reference("localhost/x:1"), "localhost/x:1");
  EXPECT_EQ(normalize_reference("localhost:5000/x"), "localhost:5000/x:latest");
  EXPECT_EQ(normalize_reference("app@sha256:abc"), "app@sha256:abc");
}

TEST(ParseImageConfig, ReadsTheRuntimeFields) {
  auto c = parse_image_config(R"({"config":{"User":"1234","Env":["A=1","B=x=y"],
      "Entrypoint":["/ep"],"Cmd":["a","b"],"WorkingDir":"/srv"}})");
  EXPECT_EQ(c.user, "1234");
  EXPECT_EQ(c.env, (EnvList{{"A", "1"}, {"B", "x=y"}}));
  EXPECT_EQ(c.entrypoint, (std::vector<std::string>{"/ep"}));
  EXPECT_EQ(c.cmd, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.working_dir, "/srv");
  EXPECT_THROW(parse_image_config("not json"), std::runtime_error);
  EXPECT_EQ(parse_image_config(R"({"config":{}})").user, "");
}

TEST(ResolveUser, NamesComeFromTheImagesPasswdAndGroup) {
  test::TempDir root;
  std::filesystem::create_directories(std::filesystem::path(root.path()) / "etc");
  std::ofstream(std::filesystem::path(root.path()) / "etc/passwd") << "root:x:0:0::/:/bin/sh\napp:x:1234:4321::/:/x\n";
  std::ofstream(std::filesystem::path(root.path()) / "etc/group") << "staff:x:50:\n";
  std::string err;
  auto ids = resolve_user("app", root.path(), err);
  ASSERT_TRUE(ids);
  EXPECT_EQ((std::pair{ids->uid, ids->gid}), (std::pair{uid_t(1234), gid_t(4321)}));
  ids = resolve_user("1234:staff", root.path(), err);
  ASSERT_TRUE(ids);
  EXPECT_EQ((std::pair{ids->uid, ids->gid}), (std::pair{uid_t(1234), gid_t(50)}));
  ids = resolve_user("999", root.path(), err);  // not in passwd: gid 0, as containerd does
  ASSERT_TRUE(ids);
  EXPECT_EQ((std::pair{ids->uid, ids->gid}), (std::pair{uid_t(999), gid_t(0)}));
  EXPECT_FALSE(resolve_user("nobody-here", root.path(), err));
  EXPECT_NE(err.find("unable to find user nobody-here"), std::string::npos);
}

TEST(WithImageEnv, ThePodsValuesWinInTheImagesPlace) {
  EnvList image = {{"PATH", "/bin"}, {"GREETING", "x"}};
  EXPECT_EQ(with_image_env(image, {{"GREETING", "pod"}, {"FOO", "1"}}),
            (EnvList{{"PATH", "/bin"}, {"GREETING", "pod"}, {"FOO", "1"}}));
}

TEST(OciConfig, JoinsThePodsNetworkAndDropsCapabilitiesForNonRoot) {
  OciContainer c;
  c.bundle = "/b";
  c.netns = "kubesim-x-p1";
  c.uid = 1234;
  c.additional_gids = {3000};
  c.mounts = {{"/src", "/etc/creds", true}};
  auto j = oci_config(c);
  EXPECT_EQ(j["root"]["path"], "/b/rootfs");
  EXPECT_EQ(j["process"]["user"]["uid"], 1234);
  EXPECT_EQ(j["process"]["user"]["additionalGids"], nlohmann::json({3000}));
  EXPECT_TRUE(j["process"]["capabilities"]["effective"].empty());
  bool net = false;
  for (const auto& ns : j["linux"]["namespaces"]) {
    if (ns["type"] == "network") net = ns["path"] == "/run/netns/kubesim-x-p1";
  }
  EXPECT_TRUE(net);
  auto last = j["mounts"].back();
  EXPECT_EQ(last["destination"], "/etc/creds");
  EXPECT_EQ(last["options"].back(), "ro");
}

}  // namespace
}  // namespace lpk::kubesim
