#include "tools/kubesim/runtime/images.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/temp_dir.hpp"

namespace lpk::kubesim {
namespace {

using Argv = std::vector<std::string>;

// The table of "Define a Command and Arguments for a Container" (kubernetes.io/docs/tasks/
// inject-data-application/define-command-argument-container/#notes): image entrypoint
// [/ep-1], image cmd [foo bar].
TEST(ContainerArgv, FollowsTheKubernetesCommandAndArgsTable) {
  Image img{{"/ep-1"}, {"foo", "bar"}, {}};
  EXPECT_EQ(container_argv(img, {}, {}), (Argv{"/ep-1", "foo", "bar"}));
  EXPECT_EQ(container_argv(img, {"/ep-2"}, {}), (Argv{"/ep-2"}));
  EXPECT_EQ(container_argv(img, {}, {"zoo", "boo"}), (Argv{"/ep-1", "zoo", "boo"}));
  EXPECT_EQ(container_argv(img, {"/ep-2"}, {"zoo", "boo"}), (Argv{"/ep-2", "zoo", "boo"}));
}

TEST(ContainerArgv, ImageWithoutEntrypointRunsArgsAsTheCommand) {
  Image busybox{{}, {"sh"}, {}};
  EXPECT_EQ(container_argv(busybox, {}, {}), (Argv{"sh"}));
  EXPECT_EQ(container_argv(busybox, {}, {"sh", "-c", "true"}), (Argv{"sh", "-c", "true"}));
  EXPECT_TRUE(container_argv(Image{}, {}, {}).empty());
}

TEST(ImageRepository, DropsRegistryTagAndDigest) {
  EXPECT_EQ(image_repository("docker.io/library/nginx:1.27"), "nginx");
  EXPECT_EQ(image_repository("registry.example.com:5000/team/app:1.2@sha256:ab"), "team/app");
  EXPECT_EQ(image_repository("lpk/lpk-agent:dev"), "lpk/lpk-agent");
  EXPECT_EQ(image_repository("localhost/x"), "x");
}

class ImageMapFile : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& text) {
    auto p = dir_ / "images.yaml";
    std::ofstream(p) << text;
    return p;
  }
  lpk::test::TempDir tmp_{"kubesim-images-"};
  const std::filesystem::path dir_{tmp_.path()};
  ImagePaths paths_{"/opt/ks/bin", "/opt/build/agent/lpk-agent", "/opt/ks/bin/demo"};
};

TEST_F(ImageMapFile, ShortAndLongFormsWithPlaceholders) {
  auto map = ImageMap::load(write("nginx: [nginx, -g, 'daemon off;']\n"
                                  "busybox: {cmd: [sh]}\n"
                                  "lpk/lpk-agent:\n"
                                  "  entrypoint: [lpk-agent]\n"
                                  "  binaries: {lpk-agent: '@AGENT@'}\n"
                                  "tool: ['@BIN@/tool', '--x']\n"),
                            paths_);
  auto nginx = map.find("nginx:1.27");
  ASSERT_TRUE(nginx);
  EXPECT_EQ(nginx->entrypoint, (Argv{"nginx"}));
  EXPECT_EQ(nginx->cmd, (Argv{"-g", "daemon off;"}));
  auto agent = map.find("lpk/lpk-agent:dev");
  ASSERT_TRUE(agent);
  EXPECT_EQ(agent->binaries.at("lpk-agent"), "/opt/build/agent/lpk-agent");
  EXPECT_EQ(container_argv(*agent, {"lpk-agent"}, {"--listen", "127.0.0.1:4590"}),
            (Argv{"lpk-agent", "--listen", "127.0.0.1:4590"}));
  EXPECT_EQ(map.find("tool")->entrypoint, (Argv{"/opt/ks/bin/tool"}));
  EXPECT_EQ(map.find("busybox")->entrypoint, Argv{});
  EXPECT_FALSE(map.find("postgres:16"));
}

TEST_F(ImageMapFile, ErrorsNameTheFileAndTheProblem) {
  auto p = write("x: {entrypont: [a]}\n");
  try {
    ImageMap::load(p, paths_);
    FAIL() << "a misspelt key was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("entrypont"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ImageMap::load(write("x: 3\n"), paths_), std::runtime_error);
  EXPECT_THROW(ImageMap::load(dir_ / "missing.yaml", paths_), std::runtime_error);
}

TEST_F(ImageMapFile, DefaultsMapTheAgentImageToTheGivenBinary) {
  auto map = ImageMap::defaults(paths_);
  auto agent = map.find("lpk/lpk-agent:dev");
  ASSERT_TRUE(agent);
  EXPECT_EQ(agent->binaries.at("lpk-agent"), paths_.agent);
  EXPECT_EQ(map.find("docker.io/library/busybox:1.36")->cmd, (Argv{"sh"}));
}

TEST_F(ImageMapFile, ResolveExecutableSearchesPathInOrder) {
  auto a = dir_ / "a", b = dir_ / "b";
  std::filesystem::create_directories(a);
  std::filesystem::create_directories(b);
  std::ofstream(a / "prog") << "not executable";
  std::ofstream(b / "prog") << "#!/bin/sh\n";
  chmod((b / "prog").c_str(), 0755);
  std::string path = a.string() + ":" + b.string();
  EXPECT_EQ(resolve_executable("prog", path), (b / "prog").string());
  EXPECT_EQ(resolve_executable("missing", path), "");
  EXPECT_EQ(resolve_executable("/abs/prog", path), "/abs/prog");
}

}  // namespace
}  // namespace lpk::kubesim
