#pragma once
// The tests' scratch directory: made fresh for one test (or one fixture), removed with
// everything in it afterwards.
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace lpk::test {

/// A unique directory <parent>/<prefix>XXXXXX made by mkdtemp, so mode 0700 and owned by the
/// test. parent is $TMPDIR, or /tmp when that is unset or empty. Throws std::system_error when
/// the directory cannot be made (gtest reports it as the failing test). Removed recursively,
/// errors ignored, on destruction; not copyable, so exactly one owner removes it.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "lpk-test-", std::string parent = default_parent()) {
    std::string tmpl = std::move(parent) + "/" + std::string(prefix) + "XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    path_ = std::move(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// $TMPDIR, or /tmp when that is unset or empty (as the shell's ${TMPDIR:-/tmp}).
  static std::string default_parent() {
    const char* env = ::getenv("TMPDIR");
    return env && *env ? env : "/tmp";
  }

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  /// Writes rel (creating its directories) with the given mode and returns its absolute path.
  std::string write(const std::string& rel, const std::string& text, int mode = 0644) const {
    std::string p = *this / rel;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }

 private:
  std::string path_;
};

}  // namespace lpk::test
