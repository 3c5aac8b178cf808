#include "tools/kubesim/runtime/process.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tools/kubesim/runtime/netns.hpp"

namespace lpk::kubesim {

namespace fs = std::filesystem;

bool hidden_in_container(const std::string& path) {
  for (const char* dir : {"/tmp/", "/run/", "/var/run/"}) {
    if (path.rfind(dir, 0) == 0) return true;
  }
  return false;
}

namespace {

void ensure_target(const Mount& m, std::vector<std::string>& created) {
  fs::path t = m.target;
  if (fs::exists(t)) return;
  // /run and /tmp are tmpfs in the container: their mount points are made there.
  if (hidden_in_container(m.target)) return;
  fs::path p;
  std::vector<fs::path> made;
  for (const auto& part : fs::is_directory(m.source) ? t : t.parent_path()) {
    p /= part;
    if (!fs::exists(p)) made.push_back(p);
  }
  if (fs::is_directory(m.source)) {
    fs::create_directories(t);
  } else {
    fs::create_directories(t.parent_path());
    std::ofstream(t).close();
    made.push_back(t);
  }
  for (const auto& d : made) created.push_back(d.string());
}

}  // namespace

namespace detail {

[[noreturn]] void child_fail(int pipe_fd, const char* what) {
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%s: %s", what, strerror(errno));
  if (write(pipe_fd, buf, n) < 0) {
  }
  _exit(127);
}

void mkdirs_in_child(const std::string& path, bool file) {
  std::string cur;
  size_t pos = 1;
  while (true) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) break;
    cur = path.substr(0, slash);
    mkdir(cur.c_str(), 0755);
    pos = slash + 1;
  }
  if (file) {
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
  } else {
    mkdir(path.c_str(), 0755);
  }
}

// The container's pid 1 when the program runs from the host (tini's job): forks, and in the
// parent forwards every signal to the program, reaps orphans, and exits as the program
// does. A host program such as `sleep` then still ends on SIGTERM, as it did before it had
// a PID namespace, where a pid 1 without a handler would ignore it. Returns in the child.
void run_as_init(int pipe_fd) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  pid_t program = fork();
  if (program < 0) child_fail(pipe_fd, "fork");
  if (program == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    return;
  }
  // This init never execs, so close-on-exec would never close kubesim's descriptors here: the
  // API listener and its connections would live on in every pod (a restarted API server could
  // not bind its port again, and connections would pile up in a backlog no one accepts).
  // The parent learns of a failed exec from the program's copy of pipe_fd alone.
  if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < 4096; ++fd) close(fd);
  }
  while (true) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(program, sig);
      continue;
    }
    int status = 0;
    for (pid_t done; (done = waitpid(-1, &status, WNOHANG)) > 0;) {
      if (done == program) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
}

pid_t await_exec(pid_t pid, int report_fd) {
  if (pid < 0) {
    int e = errno;
    close(report_fd);
    throw std::runtime_error("fork: " + std::string(strerror(e)));
  }
  char buf[256];
  ssize_t n = read(report_fd, buf, sizeof buf);
  close(report_fd);
  if (n > 0) {
    waitpid(pid, nullptr, 0);
    throw std::runtime_error(std::string(buf, n));
  }
  return pid;
}

}  // namespace detail

using detail::child_fail;
using detail::run_as_init;
using detail::mkdirs_in_child;

pid_t start_container(const ContainerSpec& spec, std::vector<std::string>& created_dirs) {
  if (spec.argv.empty()) throw std::runtime_error("no command specified");
  // The program itself may sit where the container gets a fresh tmpfs (a build tree under
  // /tmp): then it is bind-mounted back at its own path, as an image layer would hold it.
  std::string exe = spec.executable.empty() ? spec.argv[0] : spec.executable;
  std::error_code canon_ec;
  std::string exe_real =
      !exe.empty() && exe.front() == '/' ? fs::weakly_canonical(exe, canon_ec).string() : "";
  bool exe_hidden = !exe_real.empty() && hidden_in_container(exe_real);
  std::string exec_path = exe_hidden ? exe_real : spec.executable;
  for (const auto& m : spec.mounts) ensure_target(m, created_dirs);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<bool> is_dir;
  for (const auto& m : spec.mounts) is_dir.push_back(fs::is_directory(m.source));
  int netns_fd = open(netns_path(spec.netns).c_str(), O_RDONLY | O_CLOEXEC);
  int log_fd = open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int pipefd[2];
  if (netns_fd < 0 || log_fd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
    std::string why = strerror(errno);
    if (netns_fd >= 0) close(netns_fd);
    if (log_fd >= 0) close(log_fd);
    throw std::runtime_error("cannot prepare container: " + why);
  }
  std::string resolv_target = fs::weakly_canonical("/etc/resolv.conf").string();
  std::string hosts_target = fs::weakly_canonical("/etc/hosts").string();
  // The child is the init of a PID namespace of its own, as in a runtime's container: when it
  // ends, the kernel kills everything the container started (nginx's workers, a shell's
  // children), which would otherwise live on, reparented to the host's init.
  pid_t pid = pid_t(syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (pid == 0) {
    close(pipefd[0]);
    // Nothing of kubesim's goes into the container: an inherited API listener or connection
    // would stay open in the pod after kubesim closes it (a restarted API server could not
    // bind its port again, a dropped port-forward would not end). Marked, not closed: the
    // descriptors below are still needed until exec.
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 4096; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (setns(netns_fd, CLONE_NEWNET) != 0) child_fail(pipefd[1], "setns");
    if (unshare(CLONE_NEWNS | CLONE_NEWUTS) != 0) child_fail(pipefd[1], "unshare");
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      child_fail(pipefd[1], "make / private");
    }
    sethostname(spec.hostname.c_str(), spec.hostname.size());
    // The namespace's own /proc, so that the container sees only its processes.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
    // Sources may live under /tmp or /run, which get fresh tmpfs mounts: hold them open
    // first and mount through /proc/self/fd.
    int resolv_fd = open(spec.resolv_conf.c_str(), O_PATH | O_CLOEXEC);
    int hosts_fd = open(spec.hosts.c_str(), O_PATH | O_CLOEXEC);
    std::vector<int> src_fds;
    for (const auto& m : spec.mounts) src_fds.push_back(open(m.source.c_str(), O_PATH | O_CLOEXEC));
    int exe_fd = exe_hidden ? open(exe_real.c_str(), O_PATH | O_CLOEXEC) : -1;
    if (exe_hidden && exe_fd < 0) child_fail(pipefd[1], exe.c_str());
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    char fd_path[64];
    if (exe_hidden) {
      mkdirs_in_child(exe_real, true);
      snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", exe_fd);
      if (mount(fd_path, exe_real.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        child_fail(pipefd[1], exe_real.c_str());
      }
    }
    // /etc/resolv.conf is often a link into /run, which is a fresh tmpfs now.
    mkdirs_in_child(resolv_target.c_str(), true);
    snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", resolv_fd);
    if (mount(fd_path, resolv_target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      child_fail(pipefd[1], "mount /etc/resolv.conf");
    }
    mkdirs_in_child(hosts_target.c_str(), true);
    snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", hosts_fd);
    mount(fd_path, hosts_target.c_str(), nullptr, MS_BIND, nullptr);
    for (size_t i = 0; i < spec.mounts.size(); ++i) {
      const Mount& m = spec.mounts[i];
      mkdirs_in_child(m.target, !is_dir[i]);
      snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", src_fds[i]);
      if (src_fds[i] < 0 ||
          mount(fd_path, m.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        child_fail(pipefd[1], m.target.c_str());
      }
      if (m.read_only) {
        mount(nullptr, m.target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
      }
    }
    if (chdir(spec.working_dir.empty() ? "/" : spec.working_dir.c_str()) != 0) {
      child_fail(pipefd[1], "chdir");
    }
    dup2(spec.stdout_fd >= 0 ? spec.stdout_fd : log_fd, 1);
    dup2(spec.stderr_fd >= 0 ? spec.stderr_fd : log_fd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    run_as_init(pipefd[1]);
    if (exec_path.empty()) {
      execvpe(argv[0], argv.data(), envp.data());
    } else {
      execve(exec_path.c_str(), argv.data(), envp.data());
    }
    child_fail(pipefd[1], exe.c_str());
  }
  close(pipefd[1]);
  close(netns_fd);
  close(log_fd);
  return detail::await_exec(pid, pipefd[0]);
}

pid_t container_program(pid_t init) {
  std::ifstream children("/proc/" + std::to_string(init) + "/task/" + std::to_string(init) +
                         "/children");
  pid_t program = -1;
  return children >> program && program > 0 ? program : init;
}

}  // namespace lpk::kubesim
