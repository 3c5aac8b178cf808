// run_exec_plugin: spawning the plugin and reading its output, apart from the parsers in
// exec_plugin.cpp, which lpk::kube_parse (and the fuzz target) take without any I/O.
#include "kube/detail/exec_plugin.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

extern char** environ;

namespace lpk::kube::detail {

namespace {

constexpr size_t kMaxOutput = 4 << 20;

/// Parent environment, then exec.env, then KUBERNETES_EXEC_INFO; a later name wins (Go's dedupEnv).
std::vector<std::string> plugin_env(const ExecConfig& x, const std::string& info) {
  std::vector<std::pair<std::string, std::string>> vars;
  auto set = [&](const std::string& k, const std::string& v) {
    for (auto& kv : vars)
      if (kv.first == k) {
        kv.second = v;
        return;
      }
    vars.emplace_back(k, v);
  };
  for (char** e = environ; *e; ++e) {
    std::string_view s(*e);
    auto eq = s.find('=');
    if (eq != std::string_view::npos)
      set(std::string(s.substr(0, eq)), std::string(s.substr(eq + 1)));
  }
  for (const auto& [k, v] : x.env) set(k, v);
  set("KUBERNETES_EXEC_INFO", info);
  std::vector<std::string> out;
  for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
  return out;
}

struct Child {
  pid_t pid = -1;
  int out_fd = -1;
};

Child spawn(const ExecConfig& x, bool interactive, std::vector<std::string> env) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    fail_exec_plugin(x, std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  // Stdin is the terminal only when the plugin may talk to the user.
  if (!interactive) posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> args{x.command};
  args.insert(args.end(), x.args.begin(), x.args.end());
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  Child c;
  int rc = posix_spawnp(&c.pid, x.command.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    std::string what = rc == ENOENT ? "executable not found" : std::strerror(rc);
    if (!x.install_hint.empty())
      what += "; " + x.install_hint;
    else
      what += "; install it or fix users[].user.exec.command in the kubeconfig";
    fail_exec_plugin(x, what);
  }
  c.out_fd = fds[0];
  return c;
}

}  // namespace

ExecCredential run_exec_plugin(const ExecConfig& x, const ClusterConfig& cluster) {
  bool tty = ::isatty(STDIN_FILENO) == 1;
  if (x.interactive_mode == "Always" && !tty)
    fail_exec_plugin(
        x,
        "interactiveMode is Always but standard input is not a terminal; run it from a "
        "terminal or set interactiveMode to IfAvailable");
  bool interactive = tty && x.interactive_mode != "Never";
  Child c = spawn(x, interactive, plugin_env(x, exec_info_json(x, cluster, interactive)));
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(c.out_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < kMaxOutput) out.append(buf, size_t(n));
  }
  ::close(c.out_fd);
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status))
    fail_exec_plugin(x, "killed by signal " + std::to_string(WTERMSIG(status)));
  if (WEXITSTATUS(status) != 0)
    fail_exec_plugin(x, "failed with exit code " + std::to_string(WEXITSTATUS(status)) +
                            " (its stderr is above)");
  return parse_exec_credential(out, x);
}

}  // namespace lpk::kube::detail
