#include "kube/detail/exec_plugin.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "kube/text.hpp"

extern char** environ;

namespace lpk::kube::detail {

namespace {

constexpr size_t kMaxOutput = 4 << 20;

[[noreturn]] void fail(const ExecConfig& x, const std::string& what) {
  throw ConfigError("kube: exec credential plugin " + x.command + ": " + what);
}

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
    if (eq != std::string_view::npos) set(std::string(s.substr(0, eq)), std::string(s.substr(eq + 1)));
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
  if (::pipe2(fds, O_CLOEXEC) != 0) fail(x, std::string("pipe: ") + std::strerror(errno));
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
    if (!x.install_hint.empty()) what += "; " + x.install_hint;
    else what += "; install it or fix users[].user.exec.command in the kubeconfig";
    fail(x, what);
  }
  c.out_fd = fds[0];
  return c;
}

}  // namespace

std::string exec_info_json(const ExecConfig& x, const ClusterConfig& c, bool interactive) {
  nlohmann::json spec{{"interactive", interactive}};
  if (x.provide_cluster_info) {
    nlohmann::json cluster{{"server", c.server}};
    if (!c.tls_server_name.empty()) cluster["tls-server-name"] = c.tls_server_name;
    if (c.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!c.ca_pem.empty()) cluster["certificate-authority-data"] = text::base64_encode(c.ca_pem);
    if (!c.proxy_url.empty()) cluster["proxy-url"] = c.proxy_url;
    if (c.disable_compression) cluster["disable-compression"] = true;
    if (!x.cluster_extension.is_null()) cluster["config"] = x.cluster_extension;
    spec["cluster"] = cluster;
  }
  return nlohmann::json{{"kind", "ExecCredential"}, {"apiVersion", x.api_version}, {"spec", spec}}
      .dump();
}

ExecCredential parse_exec_credential(std::string_view out, const ExecConfig& x) {
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(x, "its output is not a JSON ExecCredential");
  auto str = [&](const nlohmann::json& o, const char* k) -> std::string {
    auto it = o.find(k);
    if (it == o.end() || it->is_null()) return {};
    if (!it->is_string()) fail(x, std::string("field ") + k + " is not a string");
    return it->get<std::string>();
  };
  if (str(j, "kind") != "ExecCredential") fail(x, "its output is not an ExecCredential");
  if (std::string v = str(j, "apiVersion"); v != x.api_version)
    fail(x, "configured to use API version " + x.api_version + ", the plugin returned version " +
                (v.empty() ? "none" : v));
  auto st = j.find("status");
  if (st == j.end() || !st->is_object()) fail(x, "it did not return a status field");
  ExecCredential c{str(*st, "token"), str(*st, "clientCertificateData"),
                   str(*st, "clientKeyData"), std::nullopt};
  if (c.token.empty() && c.cert_pem.empty() && c.key_pem.empty())
    fail(x, "it did not return a token or a certificate/key pair");
  if (c.cert_pem.empty() != c.key_pem.empty())
    fail(x, "it returned only a certificate or a key, not both");
  if (std::string exp = str(*st, "expirationTimestamp"); !exp.empty()) {
    c.expiry = parse_rfc3339(exp);
    if (!c.expiry) fail(x, "expirationTimestamp \"" + exp + "\" is not RFC 3339");
  }
  return c;
}

ExecCredential run_exec_plugin(const ExecConfig& x, const ClusterConfig& cluster) {
  bool tty = ::isatty(STDIN_FILENO) == 1;
  if (x.interactive_mode == "Always" && !tty)
    fail(x, "interactiveMode is Always but standard input is not a terminal; run it from a "
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
  if (WIFSIGNALED(status)) fail(x, "killed by signal " + std::to_string(WTERMSIG(status)));
  if (WEXITSTATUS(status) != 0)
    fail(x, "failed with exit code " + std::to_string(WEXITSTATUS(status)) +
                " (its stderr is above)");
  return parse_exec_credential(out, x);
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
  int Y, M, D, h, m, sec, n = 0;
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) !=
          6 ||
      n != 19)
    return std::nullopt;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return std::nullopt;
  std::string_view rest = s.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    size_t digits = 0;
    while (digits < rest.size() && std::isdigit(uint8_t(rest[digits]))) ++digits;
    if (digits == 0) return std::nullopt;
    rest.remove_prefix(digits);  // sub-second precision does not matter for an expiry
  }
  int offset = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest).c_str() + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    offset = (oh * 60 + om) * 60 * (rest[0] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  using namespace std::chrono;
  auto days = sys_days(year{Y} / month{unsigned(M)} / day{unsigned(D)});
  sys_seconds t = days + hours{h} + minutes{m} + seconds{sec} - seconds{offset};
  // system_clock counts nanoseconds in 64 bits: years past 2262 would wrap into the past.
  if (t >= time_point_cast<seconds>(system_clock::time_point::max())) return system_clock::time_point::max();
  return time_point_cast<system_clock::duration>(t);
}

}  // namespace lpk::kube::detail
