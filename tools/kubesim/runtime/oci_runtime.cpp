#include "tools/kubesim/runtime/oci_runtime.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "tools/kubesim/runtime/netns.hpp"
#include "tools/kubesim/runtime/process.hpp"

namespace lpk::kubesim {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// containerd's default set (pkg/oci/spec.go defaultUnixCaps), what a pod gets without
// securityContext.capabilities.
const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};

json system_mounts() {
  return json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      {{"destination", "/dev"},
       {"type", "tmpfs"},
       {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"},
       {"type", "devpts"},
       {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
      {{"destination", "/dev/shm"},
       {"type", "tmpfs"},
       {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"},
       {"type", "mqueue"},
       {"source", "mqueue"},
       {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"},
       {"type", "sysfs"},
       {"source", "sysfs"},
       {"options", {"nosuid", "noexec", "nodev", "ro"}}},
  });
}

json bind_mount(const std::string& source, const std::string& target, bool read_only) {
  json options = {"rbind", "rprivate"};
  if (read_only) options.push_back("ro");
  return {{"destination", target}, {"type", "bind"}, {"source", source}, {"options", options}};
}

json process_of(const OciContainer& c) {
  json env = json::array();
  for (const auto& [k, v] : c.env) env.push_back(k + "=" + v);
  // A non-root user starts with no effective capabilities, as with containerd and Docker.
  json caps = c.uid == 0 ? json(kDefaultCaps) : json::array();
  return {{"terminal", false},
          {"user", {{"uid", c.uid}, {"gid", c.gid}, {"additionalGids", c.additional_gids}}},
          {"args", c.argv},
          {"env", env},
          {"cwd", c.cwd.empty() ? "/" : c.cwd},
          {"capabilities",
           {{"bounding", kDefaultCaps},
            {"effective", caps},
            {"permitted", caps},
            {"inheritable", json::array()},
            {"ambient", json::array()}}},
          {"noNewPrivileges", false}};
}

std::string overlay_options(const OciContainer& c) {
  return "lowerdir=" + c.image_rootfs.string() + ",upperdir=" + (c.bundle / "upper").string() +
         ",workdir=" + (c.bundle / "work").string();
}

}  // namespace

json oci_config(const OciContainer& c) {
  json mounts = system_mounts();
  mounts.push_back(bind_mount(c.hosts, "/etc/hosts", false));
  mounts.push_back(bind_mount(c.resolv_conf, "/etc/resolv.conf", false));
  for (const auto& m : c.mounts)
    mounts.push_back(bind_mount(m.source.string(), m.target, m.read_only));
  return {{"ociVersion", "1.0.2"},
          {"process", process_of(c)},
          {"root", {{"path", (c.bundle / "rootfs").string()}, {"readonly", c.read_only_root}}},
          {"hostname", c.hostname},
          {"mounts", mounts},
          {"linux",
           {{"namespaces",
             {{{"type", "pid"}},
              {{"type", "ipc"}},
              {{"type", "uts"}},
              {{"type", "mount"}},
              {{"type", "network"}, {"path", netns_path(c.netns)}}}},
            {"maskedPaths",
             {"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
              "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}},
            {"readonlyPaths",
             {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}};
}

fs::path crun_root(const fs::path& state_dir) { return state_dir / "crun"; }

pid_t oci_init_pid(const fs::path& bundle) {
  std::ifstream f(bundle / "pid");
  pid_t pid = -1;
  return f >> pid && pid > 0 ? pid : -1;
}

void remove_oci_container(const std::string& id, const fs::path& bundle, const fs::path& root) {
  std::error_code ec;
  fs::remove_all(bundle, ec);
  if (!id.empty()) fs::remove_all(root / id, ec);
}

namespace {

// What the child of start_oci_container does: only async-signal-safe calls, then exec crun
// (or report why not on fail_fd).
[[noreturn]] void run_crun(const OciContainer& c, const char* rootfs, const char* options,
                           const std::string& workdir, char** argv, int fail_fd) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (unshare(CLONE_NEWNS) != 0) detail::child_fail(fail_fd, "unshare");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    detail::child_fail(fail_fd, "make / private");
  }
  // crun refuses a host whose cgroup2 mount has controllers next to cgroup v1 ("hybrid
  // mode"); the containers stay out of the machine's cgroups anyway.
  umount2("/sys/fs/cgroup/unified", MNT_DETACH);
  if (mount("overlay", rootfs, "overlay", 0, options) != 0) {
    detail::child_fail(fail_fd, "mount the container's overlay root");
  }
  // The runtime chdirs into WORKDIR; containerd makes it when the image has none.
  detail::mkdirs_in_child(workdir, false);
  dup2(c.stdout_fd, 1);
  dup2(c.stderr_fd, 2);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, 0);
  execvp("crun", argv);
  detail::child_fail(fail_fd, "exec crun");
}

}  // namespace

pid_t start_oci_container(const OciContainer& c, const fs::path& root) {
  for (const char* d : {"rootfs", "upper", "work"}) fs::create_directories(c.bundle / d);
  fs::create_directories(root);
  std::ofstream(c.bundle / "config.json", std::ios::trunc) << oci_config(c).dump(1);
  std::string options = overlay_options(c);
  std::string rootfs = (c.bundle / "rootfs").string();
  std::string workdir = rootfs + (c.cwd.empty() ? "/" : c.cwd);
  std::vector<std::string> args = {
      "crun",     "--root",          root.string(), "--cgroup-manager=disabled", "run",
      "--bundle", c.bundle.string(), "--pid-file",  (c.bundle / "pid").string(), c.id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe: " + std::string(strerror(errno)));
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    run_crun(c, rootfs.c_str(), options.c_str(), workdir, argv.data(), pipefd[1]);
  }
  close(pipefd[1]);
  return detail::await_exec(pid, pipefd[0]);
}

}  // namespace lpk::kubesim
