#include "proxy/connect/environment.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <set>

#include "kube/envvars.hpp"
#include "proxy/control/session_paths.hpp"

extern char** environ;

namespace lpk::proxy {

namespace fs = std::filesystem;

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A port name after makeEnvVariableName: upper-case letters, digits and '_'.
bool is_link_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// {SVC}_PORT_{port}_{PROTO} with an optional _PROTO/_PORT/_ADDR, given what follows "{SVC}_PORT_".
bool is_port_link_suffix(std::string_view rest) {
  auto sep = rest.find('_');
  if (sep == std::string_view::npos || !all_digits(rest.substr(0, sep))) return false;
  rest.remove_prefix(sep + 1);
  for (std::string_view proto : {"TCP", "UDP", "SCTP"}) {
    if (!starts_with(rest, proto)) continue;
    auto tail = rest.substr(proto.size());
    if (tail.empty() || tail == "_PROTO" || tail == "_PORT" || tail == "_ADDR") return true;
  }
  return false;
}

// Whether `name` is one of the kubelet's forms for the service whose prefix is `svc`.
bool is_link_form(std::string_view name, std::string_view svc) {
  if (!starts_with(name, svc) || name.size() == svc.size() || name[svc.size()] != '_') {
    return false;
  }
  auto rest = name.substr(svc.size() + 1);
  if (rest == "SERVICE_HOST" || rest == "SERVICE_PORT" || rest == "PORT") return true;
  if (starts_with(rest, "SERVICE_PORT_")) return is_link_name(rest.substr(13));
  if (starts_with(rest, "PORT_")) return is_port_link_suffix(rest.substr(5));
  return false;
}

bool is_ip_address(const std::string& value) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(value, ec);
  return !ec;
}

}  // namespace

std::string link_variable_name(std::string_view name) { return kube::env_variable_name(name); }

std::vector<std::pair<std::string, std::string>> service_link_variables(
    const LinkedService& service) {
  return kube::service_link_variables(service.name, service.address.to_string(), service.ports);
}

LinkRewrite rewrite_service_links(EnvMap& env, const std::vector<LinkedService>& services) {
  LinkRewrite result;
  std::set<std::string> mapped_prefixes;
  std::set<std::string> claimed;  // every exact name of a mapped service, present or not
  std::set<std::string> rewritten;
  for (const auto& service : services) {
    mapped_prefixes.insert(link_variable_name(service.name));
    for (auto& [name, value] : service_link_variables(service)) {
      claimed.insert(name);
      auto it = env.find(name);
      if (it == env.end()) continue;
      it->second = value;
      rewritten.insert(name);
    }
  }
  result.rewritten.assign(rewritten.begin(), rewritten.end());

  std::set<std::string> unmapped_services;
  for (const auto& [name, value] : env) {
    static constexpr std::string_view kHost = "_SERVICE_HOST";
    if (name.size() <= kHost.size() || !name.ends_with(kHost) || !is_ip_address(value)) continue;
    auto prefix = name.substr(0, name.size() - kHost.size());
    if (!mapped_prefixes.contains(prefix)) unmapped_services.insert(prefix);
  }
  std::set<std::string> unmapped;
  for (const auto& svc : unmapped_services) {
    for (const auto& [name, value] : env) {
      if (!claimed.contains(name) && is_link_form(name, svc)) unmapped.insert(name);
    }
  }
  result.unmapped.assign(unmapped.begin(), unmapped.end());
  result.unmapped_services.assign(unmapped_services.begin(), unmapped_services.end());
  return result;
}

namespace {

tunnel::Problem errno_problem(const char* what, const fs::path& p) {
  auto ec = std::error_code(errno, std::generic_category());
  return tunnel::Problem{ec, std::string("cannot ") + what + " " + p.string() + ": " + ec.message()};
}

/// root/<container_path>, or a Problem for a path that could leave root or names no file.
tunnel::Result<fs::path> imported_path(const fs::path& root, const std::string& container_path) {
  fs::path path(container_path);
  bool bad = !path.is_absolute() || !path.has_filename() || path.filename() == "." ||
             path.filename() == "..";
  for (const auto& part : path) bad = bad || part == "..";
  if (bad) {
    return tunnel::Problem{std::make_error_code(std::errc::invalid_argument),
                           "not an absolute file path without '..'"};
  }
  return root / path.relative_path();
}

}  // namespace

tunnel::Result<void> write_imported_file(const fs::path& root, const std::string& container_path,
                                         std::uint32_t mode, std::string_view bytes) {
  auto target = imported_path(root, container_path);
  if (!target) return target.error();
  // Directories between root and the file: created 0700 one by one. Only this function
  // creates entries under the private root, and it makes no symlinks; neither the write nor
  // the rename follows one in the last component.
  fs::path at = root;
  for (const auto& part : fs::path(container_path).relative_path().parent_path()) {
    at /= part;
    if (mkdir(at.c_str(), 0700) != 0 && errno != EEXIST) return errno_problem("create", at);
  }
  // Written beside the file, then renamed over it: a process reading the file while the
  // session refreshes it sees the old bytes or the new, never a mix (the kubelet's atomic
  // writer promises the same in the pod). A leftover of a crash may be read-only: unlinked.
  fs::path fresh = target->parent_path() / ("." + target->filename().string() + ".lpk-new");
  if (unlink(fresh.c_str()) != 0 && errno != ENOENT) return errno_problem("replace", fresh);
  unsigned local_mode = (mode & 0700) | 0400;
  if (auto written = write_private_file(fresh, bytes, local_mode); !written) return written;
  if (rename(fresh.c_str(), target->c_str()) != 0) {
    auto problem = errno_problem("replace", *target);
    unlink(fresh.c_str());
    return problem;
  }
  return {};
}

tunnel::Result<void> remove_imported_file(const fs::path& root,
                                          const std::string& container_path) {
  auto target = imported_path(root, container_path);
  if (!target) return target.error();
  if (unlink(target->c_str()) != 0 && errno != ENOENT) return errno_problem("remove", *target);
  return {};
}

EnvMap lpk_variables(const std::string& session, const fs::path& files_root) {
  return {{kFilesRootVariable, files_root.string()}, {kSessionVariable, session}};
}

bool developer_keeps(std::string_view name) {
  static constexpr std::array<std::string_view, 28> kExact = {
      "PATH",          "HOME",
      "USER",          "LOGNAME",
      "SHELL",         "PWD",
      "OLDPWD",        "SHLVL",
      "TMPDIR",        "TERM",
      "COLORTERM",     "TERMINFO",
      "DISPLAY",       "WAYLAND_DISPLAY",
      "XAUTHORITY",    "DBUS_SESSION_BUS_ADDRESS",
      "SSH_AUTH_SOCK", "GPG_AGENT_INFO",
      "LANG",          "LANGUAGE",
      "MANPATH",       "JAVA_HOME",
      "GOROOT",        "GOPATH",
      "PYTHONHOME",    "PYTHONPATH",
      "VIRTUAL_ENV",   "NODE_PATH"};
  static constexpr std::array<std::string_view, 3> kPrefixes = {"LC_", "LD_", "XDG_"};
  if (std::find(kExact.begin(), kExact.end(), name) != kExact.end()) return true;
  return std::any_of(kPrefixes.begin(), kPrefixes.end(),
                     [&](std::string_view p) { return starts_with(name, p); });
}

EnvMap build_child_environment(const EnvMap& developer, const EnvMap& imported, const EnvMap& lpk) {
  EnvMap env = developer;
  for (const auto& [name, value] : imported) {
    if (developer_keeps(name)) continue;
    env[name] = value;
  }
  for (const auto& [name, value] : lpk) env[name] = value;
  return env;
}

EnvMap current_environment() {
  EnvMap env;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view line(*entry);
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return env;
}

std::vector<std::string> to_envp(const EnvMap& env) {
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

bool is_portable_variable_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string dotenv_line(std::string_view key, std::string_view value) {
  std::string line(key);
  line += "=\"";
  for (char c : value) {
    switch (c) {
      case '\\':
        line += "\\\\";
        break;
      case '"':
        line += "\\\"";
        break;
      case '$':
        line += "\\$";
        break;
      case '\n':
        line += "\\n";
        break;
      default:
        line += c;
    }
  }
  line += '"';
  return line;
}

tunnel::Result<void> write_env_file(const fs::path& path, const EnvMap& env,
                               std::vector<std::string>& left_out) {
  std::string text;
  for (const auto& [name, value] : env) {
    if (!is_portable_variable_name(name)) {
      left_out.push_back(name);
      continue;
    }
    text += dotenv_line(name, value);
    text += '\n';
  }
  return write_private_file(path, text, 0600);
}

}  // namespace lpk::proxy
