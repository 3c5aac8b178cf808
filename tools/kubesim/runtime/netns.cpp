#include "tools/kubesim/runtime/netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace lpk::kubesim {

namespace {
std::string g_instance = "default";
}

std::string instance_tag(const std::filesystem::path& state_dir) {
  std::error_code ec;
  std::string path =
      std::filesystem::weakly_canonical(std::filesystem::absolute(state_dir), ec).string();
  if (ec) path = state_dir.string();
  uint32_t h = 2166136261u;  // FNV-1a: the same tag from every build of `up` and `down`
  for (unsigned char c : path) h = (h ^ c) * 16777619u;
  char buf[9];
  snprintf(buf, sizeof buf, "%08x", h);
  return buf;
}

void set_netns_instance(const std::string& tag) { g_instance = tag; }

std::string node_netns() { return std::string(kNetnsPrefix) + g_instance + "-node"; }

std::string pod_netns(int index) {
  return std::string(kNetnsPrefix) + g_instance + "-p" + std::to_string(index);
}

std::string netns_path(const std::string& name) { return "/run/netns/" + name; }

void run_ip(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"ip"};
  full.insert(full.end(), args.begin(), args.end());
  run_command(full);
}

void run_command(const std::vector<std::string>& command) {
  std::vector<std::string> full = command;
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  char err_path[] = "/tmp/kubesim-cmd-XXXXXX";
  int err_fd = mkstemp(err_path);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (err_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  if (rc == 0) waitpid(pid, &status, 0);
  std::string err;
  if (err_fd >= 0) {
    std::ifstream f(err_path);
    // The last line: what ip prints is one line, and umoci ends with the reason.
    for (std::string line; std::getline(f, line);) {
      if (line.find_first_not_of(" \t") != std::string::npos) err = line;
    }
    close(err_fd);
    unlink(err_path);
  }
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : full) cmd += (cmd.empty() ? "" : " ") + a;
    throw std::runtime_error("`" + cmd + "` failed: " + (rc ? std::strerror(rc) : err));
  }
}

void create_node_netns(const ClusterNetwork& network) {
  std::string ns = node_netns();
  const bool v6 = network.family() == IpFamily::ipv6;
  run_ip({"netns", "add", ns});
  run_ip({"-n", ns, "link", "set", "lo", "up"});
  // A bridge without an address of its own takes the lowest MAC of its ports and changes it as
  // ports come and go: deleting one pod would move the pods' gateway to a new MAC while their
  // neighbour caches keep the old one (IPv4 may announce a change with a gratuitous ARP, IPv6
  // does not), and their packets to the node (cluster DNS, service addresses) vanish for up to
  // half a minute. A node's gateway keeps its MAC.
  run_ip({"-n", ns, "link", "add", kBridge, "address", kBridgeMac, "type", "bridge"});
  std::string node = network.node_ip() + "/" + std::to_string(network.pod_prefix_length());
  // nodad: an IPv6 address is "tentative" for a second of duplicate address detection, and
  // nothing can bind or answer from it meanwhile; on a bridge kubesim owns there is no one to
  // collide with.
  if (v6)
    run_ip({"-n", ns, "addr", "add", node, "dev", kBridge, "nodad"});
  else
    run_ip({"-n", ns, "addr", "add", node, "dev", kBridge});
  run_ip({"-n", ns, "link", "set", kBridge, "up"});
  // Any address of the service range is local in the node: service proxies bind ClusterIPs.
  run_ip({"-n", ns, v6 ? "-6" : "-4", "route", "add", "local", network.service_cidr(), "dev",
          "lo"});
  // IPv4 binds an address a local route covers; IPv6 binds only assigned ones unless told.
  if (v6) run_ip({"netns", "exec", ns, "sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1"});
}

void create_pod_netns(const std::string& name, const std::string& link, const std::string& ip,
                      const ClusterNetwork& network) {
  run_ip({"netns", "add", name});
  std::string node = node_netns();
  const bool v6 = network.family() == IpFamily::ipv6;
  run_ip({"-n", node, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name});
  run_ip({"-n", node, "link", "set", link, "master", kBridge, "up"});
  run_ip({"-n", name, "link", "set", "lo", "up"});
  std::string address = ip + "/" + std::to_string(network.pod_prefix_length());
  if (v6)
    run_ip({"-n", name, "addr", "add", address, "dev", "eth0", "nodad"});
  else
    run_ip({"-n", name, "addr", "add", address, "dev", "eth0"});
  run_ip({"-n", name, "link", "set", "eth0", "up"});
  // onlink: the gateway is the node's bridge, on this link by construction. Without it the kernel
  // checks the gateway against eth0's prefix route, which under load was sometimes not there yet
  // ("Nexthop has invalid gateway"), failing the pod's sandbox (as CNI plugins that route
  // through a fixed gateway do, e.g. Calico's 169.254.1.1).
  run_ip({"-n", name, v6 ? "-6" : "-4", "route", "add", "default", "via", network.node_ip(),
          "dev", "eth0", "onlink"});
}

void kill_processes_in(const std::string& name) {
  struct stat ns {};
  if (stat(netns_path(name).c_str(), &ns) != 0) return;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const auto pid_text = entry.path().filename().string();
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat net {};
    if (stat((entry.path() / "ns" / "net").c_str(), &net) != 0) continue;
    if (net.st_dev == ns.st_dev && net.st_ino == ns.st_ino) kill(std::stoi(pid_text), SIGKILL);
  }
}

void delete_netns(const std::string& name) {
  if (!std::filesystem::exists(netns_path(name))) return;
  try {
    run_ip({"netns", "delete", name});
  } catch (const std::exception&) {
    // Already gone in a race with another cleanup: nothing left to do.
  }
}

std::string describe_netns_mount(const std::string& name) {
  std::ifstream info("/proc/self/mountinfo");
  int netns_mounts = 0;
  bool mounted = false;
  const std::string path = netns_path(name);
  for (std::string line; std::getline(info, line);) {
    // Field 5 is the mount point.
    std::size_t at = 0;
    for (int field = 0; field < 4 && at != std::string::npos; ++field) at = line.find(' ', at + 1);
    if (at == std::string::npos) continue;
    auto point = line.substr(at + 1, line.find(' ', at + 1) - at - 1);
    if (point.rfind("/run/netns/", 0) == 0) ++netns_mounts;
    if (point == path) mounted = true;
  }
  struct stat st {};
  bool file = stat(path.c_str(), &st) == 0;
  return path + (mounted ? " is mounted" : file ? " is not mounted (its namespace is gone)"
                                                : " does not exist") +
         "; " + std::to_string(netns_mounts) + " /run/netns mounts here";
}

std::vector<std::string> list_kubesim_netns() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(std::string(kNetnsPrefix) + g_instance + "-", 0) == 0) out.push_back(n);
  }
  return out;
}

int socket_in_netns(const std::string& name, int domain, int type, int protocol) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int target = open(netns_path(name).c_str(), O_RDONLY | O_CLOEXEC);
  if (self < 0 || target < 0) {
    int e = errno;
    if (self >= 0) close(self);
    if (target >= 0) close(target);
    errno = e;
    return -1;
  }
  int fd = -1;
  if (setns(target, CLONE_NEWNET) == 0) {
    fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    int e = errno;
    setns(self, CLONE_NEWNET);
    errno = e;
  }
  close(self);
  close(target);
  return fd;
}

}  // namespace lpk::kubesim
