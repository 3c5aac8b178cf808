#include "agent/env_report.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <utility>

extern char** environ;

namespace lpk::agent {

namespace {

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// Directory entries in name order. Inside a kubelet atomic-writer directory (it has `..data`)
/// the `..` entries are the writer's internals and are left out.
bool list_dir(const std::string& path, std::vector<std::string>& names, int& err) {
  DIR* dir = ::opendir(path.c_str());
  if (!dir) {
    err = errno;
    return false;
  }
  bool atomic_writer = false;
  while (const dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (name == "..data") atomic_writer = true;
    names.push_back(std::move(name));
  }
  ::closedir(dir);
  if (atomic_writer) {
    std::erase_if(names, [](const std::string& n) { return n.rfind("..", 0) == 0; });
  }
  std::sort(names.begin(), names.end());
  return true;
}

class Walker {
 public:
  Walker(const FileLimits& limits, FileReport& out) : limits_(limits), out_(out) {}

  void visit(const std::string& path, int depth) {
    if (full()) return;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      skip(path, errno == ENOENT ? kMissingReason : std::strerror(errno));
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      visit_dir(path, st, depth);
    } else if (S_ISREG(st.st_mode)) {
      read_file(path, st);
    } else {
      skip(path, "not a regular file");
    }
  }

  void note_truncated(const std::string& root) {
    if (truncated_ && !truncation_noted_) {
      truncation_noted_ = true;
      out_.skipped.push_back({root, "more than " + std::to_string(limits_.max_entries) +
                                        " entries; the rest is not reported"});
    }
  }

 private:
  bool full() {
    if (out_.files.size() + out_.skipped.size() >= limits_.max_entries) truncated_ = true;
    return truncated_;
  }

  void skip(const std::string& path, std::string reason) {
    out_.skipped.push_back({path, std::move(reason)});
  }

  void visit_dir(const std::string& path, const struct stat& st, int depth) {
    // A symlink back up the tree would recurse forever: each directory is entered once.
    if (!seen_.insert({st.st_dev, st.st_ino}).second) {
      skip(path, "directory already reported (symlink loop or second link)");
      return;
    }
    if (depth >= limits_.max_depth) {
      skip(path, "deeper than " + std::to_string(limits_.max_depth) + " directories");
      return;
    }
    std::vector<std::string> names;
    int err = 0;
    if (!list_dir(path, names, err)) {
      skip(path, std::string("cannot list: ") + std::strerror(err));
      return;
    }
    for (const auto& name : names) visit(join(path, name), depth + 1);
  }

  void read_file(const std::string& path, const struct stat& st) {
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > limits_.per_file) {
      skip(path, "larger than " + std::to_string(limits_.per_file) + " bytes");
      return;
    }
    if (out_.total_bytes + size > limits_.total) {
      skip(path, "total limit of " + std::to_string(limits_.total) + " bytes reached");
      return;
    }
    // O_NONBLOCK: if the file was swapped for a FIFO since stat(), read must not hang.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
      skip(path, std::string("cannot read: ") + std::strerror(errno));
      return;
    }
    std::string bytes;
    bool ok = read_at_most(fd, limits_.per_file + 1, bytes);
    int err = errno;
    ::close(fd);
    if (!ok) {
      skip(path, std::string("cannot read: ") + std::strerror(err));
    } else if (bytes.size() > limits_.per_file) {  // it grew after stat()
      skip(path, "larger than " + std::to_string(limits_.per_file) + " bytes");
    } else if (out_.total_bytes + bytes.size() > limits_.total) {
      skip(path, "total limit of " + std::to_string(limits_.total) + " bytes reached");
    } else {
      out_.total_bytes += bytes.size();
      out_.files.push_back(
          {path, static_cast<std::uint32_t>(st.st_mode & 07777), std::move(bytes)});
    }
  }

  static bool read_at_most(int fd, std::uint64_t limit, std::string& out) {
    char buffer[64 * 1024];
    while (out.size() < limit) {
      auto want = std::min<std::uint64_t>(sizeof buffer, limit - out.size());
      auto n = ::read(fd, buffer, want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      if (n == 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }

  const FileLimits& limits_;
  FileReport& out_;
  std::set<std::pair<dev_t, ino_t>> seen_;
  bool truncated_ = false;
  bool truncation_noted_ = false;
};

std::string getenv_or(const std::map<std::string, std::string>& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

bool is_secret(std::string value, const std::string& secret) {
  if (secret.empty()) return false;
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value == secret;
}

/// Leaves out of `report` whatever would hand the tunnel secret to the developer's process.
void hide_secret(tunnel::AgentEnvironment& report, const EnvReportOptions& options) {
  for (const auto& name : options.hidden_variables) report.env.erase(name);
  std::erase_if(report.env, [&](const auto& entry) {
    return is_secret(entry.second, options.tunnel_secret);
  });
  for (const auto& file : report.files) {
    if (is_secret(file.bytes, options.tunnel_secret)) {
      report.skipped.push_back({file.path, "holds lpk's tunnel secret"});
    }
  }
  std::erase_if(report.files, [&](const tunnel::AgentFile& file) {
    return is_secret(file.bytes, options.tunnel_secret);
  });
}

}  // namespace

FileReport collect_files(const std::vector<std::string>& roots, const FileLimits& limits) {
  FileReport out;
  Walker walker(limits, out);
  for (const auto& root : roots) {
    walker.visit(root, 0);
    walker.note_truncated(root);
  }
  return out;
}

bool walk_met_missing(const FileReport& report) {
  return std::any_of(report.skipped.begin(), report.skipped.end(),
                     [](const tunnel::SkippedFile& s) { return s.reason == kMissingReason; });
}

tunnel::FilesUpdate files_changes(const FileReport& before, const FileReport& after) {
  std::map<std::string_view, const tunnel::AgentFile*> old_files;
  for (const auto& f : before.files) old_files.emplace(f.path, &f);
  std::map<std::string_view, std::string_view> old_skips;
  for (const auto& s : before.skipped) old_skips.emplace(s.path, s.reason);
  tunnel::FilesUpdate update;
  std::set<std::string_view> present;
  for (const auto& f : after.files) {
    present.insert(f.path);
    auto it = old_files.find(f.path);
    if (it == old_files.end() || it->second->mode != f.mode || it->second->bytes != f.bytes) {
      update.files.push_back(f);
    }
  }
  for (const auto& s : after.skipped) {
    present.insert(s.path);
    auto it = old_skips.find(s.path);
    if (it == old_skips.end() || it->second != s.reason) update.skipped.push_back(s);
  }
  // A file that became too large is skipped now: it is gone for the receiver too.
  for (const auto& s : update.skipped) {
    if (old_files.contains(s.path)) update.removed.push_back(s.path);
  }
  for (const auto& f : before.files) {
    if (!present.contains(f.path)) update.removed.push_back(f.path);
  }
  return update;
}

bool no_changes(const tunnel::FilesUpdate& update) {
  return update.files.empty() && update.removed.empty() && update.skipped.empty();
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** p = environ; p && *p; ++p) {
    std::string entry = *p;
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

tunnel::AgentEnvironment environment_report(const EnvReportOptions& options,
                                            const std::map<std::string, std::string>& env) {
  auto report = collect_files(options.mounts, options.limits);
  tunnel::AgentEnvironment out;
  out.env = env;
  out.files = std::move(report.files);
  out.skipped = std::move(report.skipped);
  auto name = getenv_or(env, "POD_NAME");
  if (name.empty()) name = getenv_or(env, "HOSTNAME");
  if (name.empty()) {  // runtimes set HOSTNAME to the pod name; the kernel's name is the same
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) name = host;
  }
  auto ns = getenv_or(env, "POD_NAMESPACE");
  if (ns.empty()) ns = first_line(options.namespace_file);
  out.pod_name = name;
  out.pod_namespace = ns;
  out.container = options.container;
  hide_secret(out, options);
  return out;
}

}  // namespace lpk::agent
