#include "proxy/control/session_paths.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

namespace lpk::proxy {

namespace fs = std::filesystem;

namespace {

const char* env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

fs::path home_dir() {
  if (const char* home = env_or_null("HOME")) return home;
  if (const passwd* pw = getpwuid(geteuid()); pw && pw->pw_dir) return pw->pw_dir;
  return temp_root();
}

std::error_code errno_code() { return {errno, std::generic_category()}; }

/// The Problem for the errno of a failed call on `path`: "cannot <what> <path>: <why>".
tunnel::Problem errno_problem(const char* what, const fs::path& path) {
  auto ec = errno_code();
  return {ec, std::string("cannot ") + what + " " + path.string() + ": " + ec.message()};
}

// Checks (and narrows) a directory lpk owns: a real directory of ours, mode 0700.
tunnel::Result<void> check_owned_dir(const fs::path& dir) {
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) return errno_problem("inspect", dir);
  if (!S_ISDIR(st.st_mode)) {
    return tunnel::Problem{
        std::make_error_code(std::errc::not_a_directory),
        dir.string() + " is not a directory (a symlink or file is in the way); remove it"};
  }
  if (st.st_uid != geteuid()) {
    return tunnel::Problem{std::make_error_code(std::errc::permission_denied),
                           dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                               ", not to you; set TMPDIR (or XDG_RUNTIME_DIR/XDG_STATE_HOME) "
                               "to a directory of your own"};
  }
  if ((st.st_mode & 0777) != 0700 && chmod(dir.c_str(), 0700) != 0) {
    return errno_problem("make private (mode 0700)", dir);
  }
  return {};
}

}  // namespace

fs::path temp_root() {
  const char* tmp = env_or_null("TMPDIR");
  return tmp ? fs::path(tmp) : fs::path("/tmp");
}

fs::path log_dir(std::string_view session) { return temp_root() / "lpk" / fs::path(session); }

fs::path state_dir() {
  if (const char* state = env_or_null("XDG_STATE_HOME")) return fs::path(state) / "lpk";
  return home_dir() / ".local" / "state" / "lpk";
}

fs::path runtime_dir() {
  if (const char* run = env_or_null("XDG_RUNTIME_DIR")) return fs::path(run) / "lpk";
  return temp_root() / "lpk" / "run";
}

fs::path session_dir(std::string_view session) {
  return runtime_dir() / "sessions" / fs::path(session);
}

fs::path control_socket_path(std::string_view session) {
  return runtime_dir() / (std::string(session) + ".sock");
}

tunnel::Result<void> make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::path full = fs::absolute(dir, ec).lexically_normal();
  if (ec) return tunnel::Problem{ec, "cannot resolve " + dir.string() + ": " + ec.message()};
  if (full.has_filename() == false) full = full.parent_path();  // drop a trailing slash
  // lpk owns the directories from the last component named "lpk" down; the ones above it
  // (/tmp, /run/user/1000, ~/.local/state) belong to the system or the user.
  fs::path lpk_root;
  for (fs::path at; const auto& part : full) {
    at /= part;
    if (part == "lpk") lpk_root = at;
  }
  bool owned = false;
  fs::path at;
  for (const auto& part : full) {
    at /= part;
    if (at == lpk_root) owned = true;
    bool last = at == full;
    if (mkdir(at.c_str(), 0700) != 0 && errno != EEXIST) return errno_problem("create", at);
    if (owned || (last && lpk_root.empty())) {
      if (auto checked = check_owned_dir(at); !checked) return checked;
    }
  }
  return {};
}

int open_private_file(const fs::path& path, unsigned mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return -1;
  // An existing file keeps its old mode through open(); a created one lost bits to the umask.
  if (fchmod(fd, mode) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

tunnel::Result<void> write_private_file(const fs::path& path, std::string_view bytes,
                                        unsigned mode) {
  int fd = open_private_file(path, mode);
  if (fd < 0) return errno_problem("write", path);
  while (!bytes.empty()) {
    ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto problem = errno_problem("write", path);
      close(fd);
      return problem;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  if (close(fd) != 0) return errno_problem("write", path);
  return {};
}

}  // namespace lpk::proxy
