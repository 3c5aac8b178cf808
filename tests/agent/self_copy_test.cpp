#include "agent/self_copy.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/temp_dir.hpp"

namespace lpk::agent {
namespace {

namespace fs = std::filesystem;

TEST(SelfCopy, FindsTheProgramItsLoaderAndItsLibraries) {
  auto files = loaded_files();
  EXPECT_EQ(files.program, fs::read_symlink("/proc/self/exe"));
  EXPECT_NE(files.loader.filename().string().find("ld-"), std::string::npos) << files.loader;
  bool libc = false;
  for (const auto& lib : files.libraries) libc = libc || lib.filename() == "libc.so.6";
  EXPECT_TRUE(libc) << "the names the binary asks for, not the files they link to";
}

TEST(SelfCopy, TheCopyRunsThroughItsOwnLoaderWithNothingFromTheSystemPath) {
  lpk::test::TempDir tmp("lpk-self-copy-");
  fs::path dir = fs::path(tmp.path()) / "lpk-agent";  // made by the copy, as in an emptyDir
  copy_loaded_files(loaded_files(), dir);
  for (const char* f : {"ld.so", "lpk-agent", "lib/libc.so.6"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir / f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0755u) << f;
  }
  // This test binary, copied as "lpk-agent", run as --keep-image runs the agent.
  std::string command;
  for (const auto& word : installed_command(dir.string())) command += word + " ";
  command += "--gtest_filter=None.None >/dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

TEST(SelfCopy, ABadDirectoryIsOneLineAndExitCode2) {
  std::vector<std::string> relative{"relative/dir"};
  EXPECT_EQ(run_install(relative), 2);
  EXPECT_EQ(run_install({}), 2);
}

}  // namespace
}  // namespace lpk::agent
