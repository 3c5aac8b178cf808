#include "proxy/control/session_paths.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "tests/temp_dir.hpp"
#include "tests/scoped_env.hpp"

namespace lpk::proxy {
namespace {

namespace fs = std::filesystem;

using lpk::test::ScopedEnv;

class SessionPathsTest : public ::testing::Test {
 protected:
  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  lpk::test::TempDir tmp_{"lpk-paths-test-"};
  const fs::path root_{tmp_.path()};
};

TEST_F(SessionPathsTest, FollowsTmpdirAndXdgVariables) {
  ScopedEnv tmp("TMPDIR", (root_ / "t").string());
  ScopedEnv state("XDG_STATE_HOME", (root_ / "state").string());
  ScopedEnv run("XDG_RUNTIME_DIR", (root_ / "run").string());
  EXPECT_EQ(temp_root(), root_ / "t");
  EXPECT_EQ(log_dir("abc"), root_ / "t" / "lpk" / "abc");
  EXPECT_EQ(state_dir(), root_ / "state" / "lpk");
  EXPECT_EQ(runtime_dir(), root_ / "run" / "lpk");
  EXPECT_EQ(session_dir("abc"), root_ / "run" / "lpk" / "sessions" / "abc");
  EXPECT_EQ(control_socket_path("abc"), root_ / "run" / "lpk" / "abc.sock");
}

TEST_F(SessionPathsTest, DefaultsWhenVariablesAreUnsetOrEmpty) {
  ScopedEnv tmp("TMPDIR", "");
  ScopedEnv state("XDG_STATE_HOME", std::nullopt);
  ScopedEnv run("XDG_RUNTIME_DIR", std::nullopt);
  ScopedEnv home("HOME", (root_ / "home").string());
  EXPECT_EQ(temp_root(), fs::path("/tmp"));
  EXPECT_EQ(log_dir("s1"), fs::path("/tmp/lpk/s1"));
  EXPECT_EQ(state_dir(), root_ / "home" / ".local" / "state" / "lpk");
  EXPECT_EQ(runtime_dir(), fs::path("/tmp/lpk/run"));
  EXPECT_EQ(session_dir("s1"), fs::path("/tmp/lpk/run/sessions/s1"));
}

TEST_F(SessionPathsTest, PrivateDirsAre0700AndLoosenedOnesNarrowed) {
  auto dir = root_ / "lpk" / "run" / "sessions" / "x";
  ASSERT_TRUE(make_private_dir(dir));
  for (auto p : {root_ / "lpk", root_ / "lpk" / "run", root_ / "lpk" / "run" / "sessions", dir}) {
    EXPECT_EQ(mode_of(p), 0700u) << p;
  }
  ASSERT_EQ(chmod((root_ / "lpk").c_str(), 0755), 0);
  ASSERT_TRUE(make_private_dir(dir));
  EXPECT_EQ(mode_of(root_ / "lpk"), 0700u);
  // Above the lpk component the directories are not lpk's to change.
  ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
  ASSERT_TRUE(make_private_dir(dir));
  EXPECT_EQ(mode_of(root_), 0755u);
}

TEST_F(SessionPathsTest, RefusesASymlinkInPlaceOfTheLpkDirectory) {
  fs::create_directory(root_ / "elsewhere");
  fs::create_directory_symlink(root_ / "elsewhere", root_ / "lpk");
  auto made = make_private_dir(root_ / "lpk" / "abc");
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message.find("not a directory"), std::string::npos)
      << made.error().message;
  EXPECT_FALSE(fs::exists(root_ / "elsewhere" / "abc"));
}

TEST_F(SessionPathsTest, RefusesADirectoryOfAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown a directory to another user";
  fs::create_directory(root_ / "lpk");
  ASSERT_EQ(chown((root_ / "lpk").c_str(), 65534, 65534), 0);
  auto made = make_private_dir(root_ / "lpk" / "abc");
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message.find("belongs to uid 65534"), std::string::npos)
      << made.error().message;
}

TEST_F(SessionPathsTest, PrivateFilesAre0600EvenWhenTheyExisted) {
  auto file = root_ / "secret.env";
  {
    std::ofstream loose(file);
    loose << "old content that is longer\n";
  }
  ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  ASSERT_TRUE(write_private_file(file, "A=1\n"));
  EXPECT_EQ(mode_of(file), 0600u);
  std::ifstream in(file);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "A=1\n");

  auto fresh = root_ / "fresh";
  mode_t old_mask = umask(0);
  auto written = write_private_file(fresh, "x");
  umask(old_mask);
  ASSERT_TRUE(written) << written.error().message;
  EXPECT_EQ(mode_of(fresh), 0600u);
}

TEST_F(SessionPathsTest, PrivateFileNeverFollowsASymlink) {
  auto target = root_ / "target";
  {
    std::ofstream t(target);
    t << "keep";
  }
  fs::create_symlink(target, root_ / "link");
  EXPECT_FALSE(write_private_file(root_ / "link", "overwritten"));
  std::ifstream in(target);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "keep");
}

}  // namespace
}  // namespace lpk::proxy
