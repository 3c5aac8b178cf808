// FileMirror against a real directory: what a full message and a delta write and remove, that
// an unchanged file is left alone, and that a replaced file changes in one step.
#include "proxy/connect/file_sync.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

ino_t inode(const fs::path& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_ino;
}

TEST(FileMirror, FullThenDeltaThenFullAgain) {
  lpk::test::TempDir dir;
  FileMirror mirror(fs::path(dir.path()) / "files");
  const auto root = mirror.root();
  auto change = mirror.apply({true, {{"/etc/a", 0644, "a1"}, {"/etc/b", 0400, "b1"}}, {}, {}});
  EXPECT_EQ(change.written, (std::vector<std::string>{"/etc/a", "/etc/b"}));
  EXPECT_EQ(slurp(root / "etc/b"), "b1");
  EXPECT_EQ(fs::status(root / "etc/b").permissions() & fs::perms::all, fs::perms::owner_read);

  // The old bytes stay readable through a descriptor opened before the change: the new file
  // was renamed over the old one, which was never truncated or rewritten in place.
  int before = ::open((root / "etc/a").c_str(), O_RDONLY);
  ASSERT_GE(before, 0);
  const auto b_inode = inode(root / "etc/b");
  change = mirror.apply({false, {{"/etc/a", 0644, "a2"}, {"/etc/b", 0400, "b1"}}, {}, {}});
  EXPECT_EQ(change.written, std::vector<std::string>{"/etc/a"});  // b is unchanged
  EXPECT_EQ(inode(root / "etc/b"), b_inode);
  char old[8] = {};
  EXPECT_EQ(::read(before, old, sizeof old), 2);
  EXPECT_EQ(std::string(old), "a1");
  ::close(before);
  EXPECT_EQ(slurp(root / "etc/a"), "a2");

  change = mirror.apply({false, {}, {"/etc/b", "/etc/never-written"}, {}});
  EXPECT_EQ(change.removed, std::vector<std::string>{"/etc/b"});
  EXPECT_FALSE(fs::exists(root / "etc/b"));

  // A full message after a reconnect: what it does not list is gone.
  change = mirror.apply({true, {{"/etc/c", 0644, "c"}}, {}, {}});
  EXPECT_EQ(change.written, std::vector<std::string>{"/etc/c"});
  EXPECT_EQ(change.removed, std::vector<std::string>{"/etc/a"});
  EXPECT_EQ(mirror.size(), 1u);
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    EXPECT_EQ(entry.path().filename().string().find(".lpk-new"), std::string::npos)
        << "a temporary file was left: " << entry.path();
  }
}

TEST(FileMirror, APathOutsideTheRootFailsAndTheOthersAreWritten) {
  lpk::test::TempDir dir;
  FileMirror mirror(fs::path(dir.path()) / "files");
  auto change = mirror.apply(
      {false, {{"/../escape", 0644, "x"}, {"relative", 0644, "x"}, {"/ok", 0644, "ok"}}, {}, {}});
  EXPECT_EQ(change.written, std::vector<std::string>{"/ok"});
  ASSERT_EQ(change.failed.size(), 2u);
  EXPECT_EQ(change.failed[0].first, "/../escape");
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "escape"));
  change = mirror.apply({false, {}, {"/../escape"}, {}});  // never written: nothing to remove
  EXPECT_TRUE(change.empty());
}

TEST(FileMirror, SkippedPathsAreNeverWritten) {
  lpk::test::TempDir dir;
  FileMirror mirror(fs::path(dir.path()) / "files", {"/var/run/secrets", "/etc/demo/big"});
  auto change = mirror.apply({true,
                              {{"/var/run/secrets/kubernetes.io/token", 0600, "t"},
                               {"/var/run/secretsX", 0644, "not under the folder"},
                               {"/etc/demo/big", 0644, "b"},
                               {"/etc/demo/greeting", 0644, "hi"}},
                              {},
                              {}});
  EXPECT_EQ(change.written,
            (std::vector<std::string>{"/var/run/secretsX", "/etc/demo/greeting"}));
  EXPECT_EQ(change.skipped,
            (std::vector<std::string>{"/var/run/secrets/kubernetes.io/token", "/etc/demo/big"}));
  EXPECT_FALSE(fs::exists(mirror.root() / "var/run/secrets"));
  EXPECT_FALSE(fs::exists(mirror.root() / "etc/demo/big"));
  EXPECT_EQ(mirror.size(), 2u);
}

}  // namespace
}  // namespace lpk::proxy
