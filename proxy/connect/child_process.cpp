#include "proxy/connect/child_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>

namespace lpk::proxy {

namespace asio = boost::asio;

namespace {

constexpr auto kNoError = asio::as_tuple(asio::use_awaitable);

// Where execvpe would look for `name`: itself when it has a '/', else each PATH entry (an
// empty entry is the current directory).
std::vector<std::string> candidates(const std::string& name, const std::vector<std::string>& envp) {
  if (name.find('/') != std::string::npos) return {name};
  std::string path;
  bool found = false;
  for (const auto& entry : envp) {
    if (entry.rfind("PATH=", 0) == 0) {
      path = entry.substr(5);
      found = true;
    }
  }
  if (!found) {
    const char* own = std::getenv("PATH");
    path = own ? own : "/usr/local/bin:/usr/bin:/bin";
  }
  std::vector<std::string> out;
  std::string_view rest(path);
  while (true) {
    auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    out.push_back((dir.empty() ? std::string(".") : dir) + "/" + name);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return out;
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Closes every descriptor from `from` up to `to` (inclusive), async-signal-safe.
void close_from(unsigned from, unsigned to) {
  if (from > to) return;
  if (syscall(SYS_close_range, from, to, 0) == 0) return;
  // Kernels before 5.9: one by one, up to the descriptor limit.
  struct rlimit limit {};
  unsigned last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                      ? static_cast<unsigned>(limit.rlim_cur) - 1
                      : 65535;
  for (unsigned fd = from; fd <= std::min(to, last); ++fd) close(static_cast<int>(fd));
}

// After fork, before exec: only async-signal-safe calls. Tries every candidate like execvpe,
// then reports errno through `report` and exits.
[[noreturn]] void exec_child(const std::vector<std::string>& paths, char** argv, char** envp,
                             std::vector<char*>& sh_argv, int report, pid_t parent, int output,
                             bool own_group) {
  if (own_group) setpgid(0, 0);
  if (output >= 0) {
    dup2(output, STDOUT_FILENO);
    dup2(output, STDERR_FILENO);
  }
  // Nothing of lpk-proxy's but stdin, stdout and stderr: listeners, the stub DNS, the control
  // socket, logs and the libraries' sockets would otherwise stay bound in the child (Asio and
  // libcurl do not open them close-on-exec) and outlive the session if lpk-proxy died.
  close_from(3, static_cast<unsigned>(report) - 1);
  close_from(static_cast<unsigned>(report) + 1, ~0U);
  // If lpk-proxy dies (kill -9), the command gets SIGTERM rather than run on without its tunnels
  // and names; the check covers a parent that died before the request.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(128 + SIGTERM);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) {
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int error = ENOENT;
  bool denied = false;
  for (const auto& path : paths) {
    execve(path.c_str(), argv, envp);
    if (errno == ENOEXEC) {  // no #! line: a shell script, as execvpe runs it
      sh_argv[1] = const_cast<char*>(path.c_str());
      execve("/bin/sh", sh_argv.data(), envp);
    }
    error = errno;
    if (error == EACCES) denied = true;
    if (error != ENOENT && error != ENOTDIR && error != EACCES && error != ESTALE) break;
  }
  if (denied && (error == ENOENT || error == ENOTDIR)) error = EACCES;
  (void)!write(report, &error, sizeof error);
  _exit(127);
}

int read_exec_error(int fd) {
  int error = 0;
  ssize_t n;
  do {
    n = read(fd, &error, sizeof error);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof error) ? error : 0;
}

}  // namespace

int exit_code_of(int status) {
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::shared_ptr<ChildProcess> ChildProcess::start(asio::any_io_executor executor,
                                                  const std::vector<std::string>& argv,
                                                  const std::vector<std::string>& envp,
                                                  int output, bool own_group) {
  if (argv.empty() || argv.front().empty()) throw SpawnError(127, "no command given after --");
  const auto paths = candidates(argv.front(), envp);
  auto argv_c = c_strings(argv);
  auto envp_c = c_strings(envp);
  std::vector<std::string> sh_args{"sh", ""};
  sh_args.insert(sh_args.end(), argv.begin() + 1, argv.end());
  auto sh_argv = c_strings(sh_args);

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe");
  // Signals stay blocked across fork so that none runs lpk's handlers in the child before
  // it has reset them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    close(report[0]);
    exec_child(paths, argv_c.data(), envp_c.data(), sh_argv, report[1], parent, output,
               own_group);
  }
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(report[1]);
  if (pid < 0) {
    close(report[0]);
    throw std::system_error(fork_errno, std::generic_category(), "fork");
  }
  int error = read_exec_error(report[0]);
  close(report[0]);
  if (error != 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (error == ENOENT || error == ENOTDIR) {
      throw SpawnError(127, argv.front() + ": command not found");
    }
    throw SpawnError(126, argv.front() + ": " + std::strerror(error));
  }

  // Also here: whichever of the two runs first, the group exists before anyone signals it.
  if (own_group) setpgid(pid, pid);
  auto child = std::make_shared<ChildProcess>(Token{}, executor, pid);
  child->own_group_ = own_group;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    asio::co_spawn(executor, child->watch_pidfd(pidfd), asio::detached);
  } else {
    asio::co_spawn(executor, child->watch_sigchld(), asio::detached);
  }
  return child;
}

ChildProcess::ChildProcess(Token, asio::any_io_executor executor, pid_t pid)
    : executor_(std::move(executor)), pid_(pid), exited_(executor_) {
  exited_.expires_at(asio::steady_timer::time_point::max());
}

ChildProcess::~ChildProcess() {
  if (exit_code_) return;
  // The io_context went away with the child running: do not leave it behind.
  kill(own_group_ ? -pid_ : pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

bool ChildProcess::try_reap() {
  if (exit_code_) return true;
  int status = 0;
  pid_t got;
  do {
    got = waitpid(pid_, &status, WNOHANG);
  } while (got < 0 && errno == EINTR);
  if (got != pid_) return false;
  exit_code_ = exit_code_of(status);
  exited_.cancel();
  return true;
}

asio::awaitable<void> ChildProcess::watch_pidfd(int pidfd) {
  auto self = shared_from_this();  // the child is reaped before this object goes away
  asio::posix::stream_descriptor fd(executor_, pidfd);
  while (!try_reap()) {
    auto [ec] = co_await fd.async_wait(asio::posix::descriptor_base::wait_read, kNoError);
    if (ec == asio::error::operation_aborted) co_return;
  }
}

asio::awaitable<void> ChildProcess::watch_sigchld() {
  auto self = shared_from_this();
  asio::signal_set sigchld(executor_, SIGCHLD);
  // A child that exited before the set was registered sent its SIGCHLD already: look first.
  while (!try_reap()) {
    auto [ec, signo] = co_await sigchld.async_wait(kNoError);
    if (ec == asio::error::operation_aborted) co_return;
  }
}

asio::awaitable<int> ChildProcess::wait() {
  auto self = shared_from_this();
  while (!exit_code_) co_await exited_.async_wait(kNoError);
  co_return *exit_code_;
}

bool ChildProcess::signal(int signal) {
  if (exit_code_) return false;
  return kill(own_group_ ? -pid_ : pid_, signal) == 0;
}

namespace {

asio::awaitable<void> kill_after(std::shared_ptr<ChildProcess> child,
                                 std::shared_ptr<asio::steady_timer> grace) {
  auto [ec] = co_await grace->async_wait(kNoError);
  if (!ec) child->signal(SIGKILL);
}

}  // namespace

asio::awaitable<int> ChildProcess::terminate(std::chrono::milliseconds grace) {
  if (exit_code_) co_return *exit_code_;
  auto self = shared_from_this();
  auto timer = std::make_shared<asio::steady_timer>(executor_, grace);
  asio::co_spawn(executor_, kill_after(self, timer), asio::detached);
  signal(SIGTERM);
  int code = co_await wait();
  timer->cancel();
  co_return code;
}

std::string pod_resolv_conf(const std::string& server, const std::string& ns,
                            const std::string& zone) {
  return "nameserver " + server + "\nsearch " + ns + ".svc." + zone + " svc." + zone + " " +
         zone + "\noptions ndots:5\n";
}

std::vector<std::string> with_private_resolv_conf(const std::vector<std::string>& argv,
                                                  const std::filesystem::path& conf) {
  std::vector<std::string> wrapped{std::filesystem::read_symlink("/proc/self/exe").string(),
                                   "__child", "--resolv-conf", conf.string(), "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

int run_child_with_resolv_conf(const std::vector<std::string>& args) {
  if (args.size() < 4 || args[0] != "--resolv-conf" || args[2] != "--") {
    std::fprintf(stderr, "lpk-proxy: __child wants --resolv-conf FILE -- COMMAND\n");
    return 2;
  }
  const auto& conf = args[1];
  if (::unshare(CLONE_NEWNS) != 0 ||
      ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount(conf.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0) {
    std::fprintf(stderr,
                 "lpk-proxy: warning: cannot give the command lpk's resolv.conf (%s); it uses "
                 "the machine's resolver\n",
                 std::strerror(errno));
  }
  std::vector<char*> argv;
  for (std::size_t i = 3; i < args.size(); ++i) argv.push_back(const_cast<char*>(args[i].c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  std::fprintf(stderr, "lpk-proxy: %s: %s\n", argv[0], std::strerror(errno));
  return errno == ENOENT ? 127 : 126;
}

}  // namespace lpk::proxy
