#pragma once
// The developer's command (`lpk-proxy connect ... -- command args`) as a child process whose
// exit the io_context sees (a pidfd when the kernel has one, SIGCHLD otherwise).
//
// Terminal and Ctrl-C: the child stays in lpk-proxy's process group, which is the terminal's
// foreground group, so it keeps the terminal (reads stdin, gets job control) and a debugger
// behaves as it does without lpk. Ctrl-C sends SIGINT to both processes: the child handles it
// as it likes (it exits, or a debugger stops its inferior), and lpk-proxy, on SIGINT while a
// child runs, only waits for the child to exit, then restores the cluster and exits with the
// child's code. SIGTERM from outside (kill, systemd) reaches lpk-proxy only; it calls
// terminate() to pass it on. If lpk-proxy itself dies (kill -9), the child gets SIGTERM
// (PR_SET_PDEATHSIG): it must not run on without its tunnels, names and listeners.

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace lpk::proxy {

/// The command could not be started; `exit_code` is what a shell would return for it: 127 when
/// the program is not found, 126 when it is found but cannot be run. what() is one line
/// ("my-api: command not found").
class SpawnError : public std::runtime_error {
 public:
  SpawnError(int exit_code, const std::string& message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

/// Lifetime: made by start() as a shared_ptr; a coroutine on the executor holds it until the
/// child has been reaped. If the object goes away (its io_context destroyed) while the child
/// still runs, the child is killed (SIGKILL) and reaped. Thread rules: use it from the
/// executor's thread.
class ChildProcess : public std::enable_shared_from_this<ChildProcess> {
 public:
  /// Starts argv[0] with `argv` and environment `envp` ("KEY=value" strings) the way execvpe
  /// does: a name without '/' is looked up in the PATH of `envp` (of this process when envp
  /// has none, then /usr/local/bin:/usr/bin:/bin); a file that is executable but not a binary
  /// is run by /bin/sh. stdin, stdout and stderr are inherited; every other descriptor is
  /// closed in the child before exec (whoever opened it, close-on-exec or not); signal
  /// dispositions and the mask are reset to the defaults. With `output` >= 0, the child's
  /// stdout and stderr are that descriptor instead (a pipe whose lines get a prefix); the
  /// caller still owns and closes it. With `own_group`, the child leads a process group of
  /// its own and signal()/terminate() reach the whole group: a shell's children with it (a
  /// `--run` command line), though a Ctrl-C on the terminal no longer does. Throws SpawnError
  /// when the program cannot be run, std::system_error when fork fails.
  static std::shared_ptr<ChildProcess> start(boost::asio::any_io_executor executor,
                                             const std::vector<std::string>& argv,
                                             const std::vector<std::string>& envp,
                                             int output = -1, bool own_group = false);

  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  /// The exit code once the child has been reaped.
  std::optional<int> exit_code() const { return exit_code_; }

  /// Waits until the child exits and returns its exit code: the status it exited with, or
  /// 128 + the signal number when a signal ended it (as shells report it). Several waiters are
  /// allowed.
  boost::asio::awaitable<int> wait();

  /// Sends SIGTERM, waits up to `grace` for the child to exit, then sends SIGKILL, and returns
  /// the exit code. Returns at once when the child has already exited.
  boost::asio::awaitable<int> terminate(std::chrono::milliseconds grace);

  /// Sends `signal` to the child (its group, when it has its own) if it still runs. Returns
  /// false when it has been reaped.
  bool signal(int signal);

 private:
  struct Token {};

 public:
  ChildProcess(Token, boost::asio::any_io_executor executor, pid_t pid);

 private:
  boost::asio::awaitable<void> watch_pidfd(int pidfd);
  boost::asio::awaitable<void> watch_sigchld();
  bool try_reap();

  boost::asio::any_io_executor executor_;
  pid_t pid_;
  bool own_group_ = false;
  std::optional<int> exit_code_;
  boost::asio::steady_timer exited_;  ///< never expires; cancelled when the child is reaped
};

/// The exit code a shell shows for a waitpid status: WEXITSTATUS, or 128 + WTERMSIG.
int exit_code_of(int wait_status);

/// The resolv.conf the kubelet writes for dnsPolicy ClusterFirst (k8s-notes §4), pointing at
/// `server` (lpk's stub DNS) for a pod of namespace `ns` in cluster domain `zone`.
std::string pod_resolv_conf(const std::string& server, const std::string& ns,
                            const std::string& zone);

/// `argv` run through `lpk-proxy __child --resolv-conf CONF -- argv...` (this executable).
std::vector<std::string> with_private_resolv_conf(const std::vector<std::string>& argv,
                                                  const std::filesystem::path& conf);

/// `lpk-proxy __child --resolv-conf FILE -- COMMAND...`: runs COMMAND in a private mount
/// namespace where /etc/resolv.conf is FILE, so that the child's resolver (glibc, musl, Go)
/// asks lpk's stub DNS without the machine's resolver being changed. Needs CAP_SYS_ADMIN;
/// without it the command runs with the machine's resolver and a warning.
int run_child_with_resolv_conf(const std::vector<std::string>& args);

}  // namespace lpk::proxy
