#include "dns/system_resolver.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

extern char** environ;

namespace lpk::dns {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMarker = "# lpk stub DNS";

std::string backup_path(const ResolverConfig& c) {
  return c.backup.empty() ? c.resolv_conf + ".lpk-backup" : c.backup;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// In place, not by rename: /etc/resolv.conf is often a bind mount (containers, our tests).
bool write_in_place(const std::string& path, const std::string& bytes, std::ostream& err) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::size_t done = 0;
  while (fd >= 0 && done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const bool ok = fd >= 0 && done == bytes.size() && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) err << "cannot write " << path << ": " << std::strerror(errno) << " (run as root?)\n";
  return ok;
}

std::string search_domains(const ResolverConfig& c) {
  return c.ns + ".svc." + c.zone + " svc." + c.zone + " " + c.zone;
}

int run(const ResolverConfig& c, std::vector<std::string> argv, std::ostream& out,
        std::ostream& err) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  out << (c.dry_run ? "would run: " : "run: ") << line << "\n";
  if (c.dry_run) return 0;
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), environ) != 0) {
    err << "cannot run " << argv[0] << ": not installed or not on PATH\n";
    return 1;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    err << "'" << line
        << "' failed; run as root (CAP_NET_ADMIN) or use --dry-run to see the steps\n";
    return 1;
  }
  return 0;
}

// New resolv.conf: the stub first, the search domains in front of the original ones, the
// original options kept; the original nameservers are dropped (the stub forwards to them).
std::string rewritten(const ResolverConfig& c, const std::string& original) {
  std::ostringstream s;
  s << kMarker << ": `lpk-proxy resolver uninstall` restores " << backup_path(c) << "\n";
  s << "nameserver " << c.address.to_string() << "\n";
  std::string search = search_domains(c);
  std::istringstream in(original);
  std::string line, options;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "search" || key == "domain") {
      for (std::string d; words >> d;) search += " " + d;
    } else if (key == "options") {
      options += line + "\n";
    }
  }
  s << "search " << search << "\n" << options;
  return s.str();
}

int install_plain(const ResolverConfig& c, std::ostream& out, std::ostream& err) {
  if (c.port != 53) {
    err << "a plain resolv.conf can only name port 53: start the stub with port 53 "
           "(--address IP:53) or use systemd-resolved\n";
    return 1;
  }
  if (!c.dry_run && !c.force && !answers_dns(c.address, c.port, 1000)) {
    err << "nothing answers DNS at " << c.address.to_string() << ":53, so this machine would be "
           "left without a resolver; start `lpk-proxy connect` first (`connect --resolver` "
           "does both), or pass --force\n";
    return 1;
  }
  const std::string backup = backup_path(c);
  const bool installed = fs::exists(backup);
  const auto original = read_file(installed ? backup : c.resolv_conf);
  if (!original) {
    err << "cannot read " << (installed ? backup : c.resolv_conf) << "\n";
    return 1;
  }
  const std::string next = rewritten(c, *original);
  if (c.dry_run) {
    if (!installed) out << "would copy " << c.resolv_conf << " to " << backup << "\n";
    out << "would write " << c.resolv_conf << ":\n" << next;
    return 0;
  }
  if (!installed) {
    if (!write_in_place(backup, *original, err)) return 1;
    out << "saved " << c.resolv_conf << " to " << backup << "\n";
  }
  if (!write_in_place(c.resolv_conf, next, err)) return 1;
  out << "wrote " << c.resolv_conf << ": nameserver " << c.address.to_string() << ", search "
      << search_domains(c) << "\n";
  return 0;
}

int uninstall_plain(const ResolverConfig& c, std::ostream& out, std::ostream& err) {
  const std::string backup = backup_path(c);
  const auto original = read_file(backup);
  if (!original) {
    out << "not installed (no " << backup << "); nothing to do\n";
    return 0;
  }
  if (c.dry_run) {
    out << "would restore " << c.resolv_conf << " from " << backup << " and remove " << backup
        << "\n";
    return 0;
  }
  if (!write_in_place(c.resolv_conf, *original, err)) return 1;
  std::error_code ec;
  fs::remove(backup, ec);
  out << "restored " << c.resolv_conf << " from " << backup << "\n";
  return 0;
}

int install_resolved(const ResolverConfig& c, std::ostream& out, std::ostream& err) {
  const std::string server = c.address.is_v6()
                                 ? "[" + c.address.to_string() + "]:" + std::to_string(c.port)
                                 : c.address.to_string() + ":" + std::to_string(c.port);
  std::vector<std::vector<std::string>> steps = {
      {c.ip, "link", "add", c.link, "type", "dummy"},
      {c.ip, "link", "set", c.link, "up"},
      {c.resolvectl, "dns", c.link, server},
      {c.resolvectl, "domain", c.link, "~" + c.zone, c.ns + ".svc." + c.zone, "svc." + c.zone,
       c.zone},
      {c.resolvectl, "default-route", c.link, "false"},
  };
  for (std::size_t i = 0; i < steps.size(); ++i) {
    // An existing link from an earlier install is fine: skip the "add" failure.
    if (run(c, steps[i], out, err) != 0 && i != 0) return 1;
  }
  return 0;
}

int uninstall_resolved(const ResolverConfig& c, std::ostream& out, std::ostream& err) {
  run(c, {c.resolvectl, "revert", c.link}, out, err);
  return run(c, {c.ip, "link", "delete", c.link}, out, err);
}

}  // namespace

bool answers_dns(const boost::asio::ip::address& address, std::uint16_t port, int timeout_ms) {
  const int family = address.is_v6() ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_storage to{};
  socklen_t to_len = 0;
  if (address.is_v6()) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&to);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    const auto bytes = address.to_v6().to_bytes();
    std::memcpy(&a->sin6_addr, bytes.data(), bytes.size());
    to_len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&to);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(address.to_v4().to_uint());
    to_len = sizeof *a;
  }
  // A query for the root's NS: any DNS server answers it at once, if only with REFUSED.
  const unsigned char query[] = {0x4c, 0x70, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
  bool answered = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), to_len) == 0 &&
      ::send(fd, query, sizeof query, 0) == static_cast<ssize_t>(sizeof query)) {
    pollfd p{fd, POLLIN, 0};
    unsigned char reply[512];
    answered = ::poll(&p, 1, timeout_ms) == 1 && ::recv(fd, reply, sizeof reply, 0) >= 12 &&
               reply[0] == query[0] && reply[1] == query[1];
  }
  ::close(fd);
  return answered;
}

std::string upstream_resolv_conf(const ResolverConfig& c) {
  const std::string backup = backup_path(c);
  return fs::exists(backup) ? backup : c.resolv_conf;
}

std::string detect_mode(const ResolverConfig& c) {
  if (c.mode != "auto") return c.mode;
  std::error_code ec;
  if (fs::is_symlink(c.resolv_conf, ec)) {
    const std::string target = fs::read_symlink(c.resolv_conf, ec).string();
    if (target.find("systemd/resolve") != std::string::npos) return "resolved";
  }
  const auto text = read_file(c.resolv_conf);
  if (text && text->find("nameserver 127.0.0.53") != std::string::npos) return "resolved";
  return "resolv.conf";
}

int install_resolver(const ResolverConfig& c, std::ostream& out, std::ostream& err) {
  return detect_mode(c) == "resolved" ? install_resolved(c, out, err) : install_plain(c, out, err);
}

int uninstall_resolver(const ResolverConfig& c, std::ostream& out, std::ostream& err) {
  return detect_mode(c) == "resolved" ? uninstall_resolved(c, out, err)
                                      : uninstall_plain(c, out, err);
}

int resolver_status(const ResolverConfig& c, std::ostream& out, std::ostream& err) {
  const std::string mode = detect_mode(c);
  out << "mode " << mode << "\n";
  if (mode == "resolved") {
    out << "link " << c.link << (fs::exists("/sys/class/net/" + c.link) ? " present" : " absent")
        << "\n";
    return 0;
  }
  const std::string backup = backup_path(c);
  const bool installed = fs::exists(backup);
  out << (installed ? "installed" : "not installed") << "\n";
  out << "upstream " << upstream_resolv_conf(c) << "\n";
  const auto text = read_file(c.resolv_conf);
  std::istringstream in(text.value_or(""));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("nameserver", 0) == 0 || line.rfind("search", 0) == 0) out << line << "\n";
  }
  return 0;
}

}  // namespace lpk::dns
