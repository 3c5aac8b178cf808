// ConnectSession once its tunnels start: every service's environment and files imported
// through its own agents, `ready` once every agent's tunnel is up, then the commands.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "proxy/connect/env_tokens.hpp"
#include "proxy/connect/prefixed_output.hpp"
#include "proxy/connect/session.hpp"
#include "proxy/control/console.hpp"
#include "proxy/control/session_paths.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<void> ConnectSession::serve() {
  for (auto& service : services_) {
    co_await import_environment(*service);
    if (side_.stopping()) co_return;
    asio::co_spawn(side_.io(), keep_files_current(*service), asio::detached);
    if (service->plan.target.route) {
      asio::co_spawn(side_.io(), watch_route(*service), asio::detached);
    }
  }
  co_await wait_for_tunnels();
  if (side_.stopping()) co_return;
  console::print_line(console::kTunnels, tunnels_up(), agent_count());
  for (const auto& service : services_) {
    if (const auto& route = service->plan.target.route) {
      console::print_line(console::kRoute, service->plan.service, route->header, route->value);
    }
  }
  console::print_line(console::kReady);
  co_await run_commands();
}

asio::awaitable<void> ConnectSession::import_environment(Replaced& service) {
  tunnel::AgentEnvironment environment;
  if (auto fetched = co_await fetch_environment(through(service))) {
    environment = std::move(*fetched);
  } else {
    std::fprintf(stderr, "lpk-proxy: cannot import the environment of %s: %s\n",
                 service.plan.target.workload.describe().c_str(), fetched.error().message.c_str());
  }
  if (side_.stopping()) co_return;
  service.imported = environment.env;
  service.imported_from = environment.pod_name;
  auto links = rewrite_service_links(service.imported, directory_->linked_services());
  // One service keeps the folder it always had; several get one each.
  auto folder = services_.size() == 1 ? std::string("files") : "files-" + service.plan.service;
  service.files =
      std::make_unique<FileMirror>(session_dir(plan_.session_id) / folder, plan_.skip_files);
  auto files = service.files->apply({true, environment.files, {}, {}});
  for (const auto& path : files.skipped) {
    console::print_line(console::kNotImported, path, "skipped");
  }
  for (const auto& [path, why] : files.failed) {
    std::fprintf(stderr, "lpk-proxy: cannot write %s: %s\n", path.c_str(), why.c_str());
  }
  for (const auto& skipped : environment.skipped) {
    console::print_line(console::kNotImported, skipped.path, skipped.reason);
  }
  service.lpk_variables = lpk_variables(plan_.session_id, service.files->root());
  // --env (lpk.yaml's env) over everything, its tokens filled in now that services have addresses.
  EnvTokenLookup lookup{[this](const std::string& name, const std::string& ns) {
                          return directory_->address_of(name, ns.empty() ? plan_.ns : ns);
                        }, service.files->root()};
  for (const auto& line : lay_env_overrides(plan_.env_overrides, lookup, service.lpk_variables)) {
    std::fprintf(stderr, "lpk-proxy: %s\n", line.c_str());
  }
  console::print_line(console::kEnvironment, service.imported.size(), environment.pod_name,
                      links.rewritten.size(), files.written.size(),
                      service.files->root().string());
  write_env_file(service);
}

void ConnectSession::write_env_file(const Replaced& service) {
  const auto& path = service.plan.env_file;
  if (path.empty()) return;
  auto everything = service.imported;
  for (const auto& [k, v] : service.lpk_variables) everything[k] = v;
  std::vector<std::string> left_out;
  if (auto written = proxy::write_env_file(path, everything, left_out); !written) {
    std::fprintf(stderr, "lpk-proxy: cannot write --env-file %s: %s\n", path.c_str(),
                 written.error().message.c_str());
  } else {
    console::print_line(console::kEnvFile, path);
  }
}

// The stream is opened on whichever of the service's tunnels carries streams now, and again
// after it ends (the agent pod went, the tunnel was replaced): its first message is the whole
// set, so nothing changed in between is missed. An agent without the service refuses the
// stream; the retries then slow down to one a minute.
asio::awaitable<void> ConnectSession::watch_route(Replaced& service) {
  const auto& target = service.plan.target;
  auto host = router_name(service.plan.service) + "." + plan_.ns + ".svc." + plan_.zone;
  auto port = router_admin_port(routed_ports(target.source_template["spec"],
                                             target.container.name, target.container.routes));
  asio::steady_timer pause(side_.io());
  bool warned = false;
  while (!side_.stopping()) {
    auto routes = co_await fetch_json(through(service), host, port, "/routes", {5s, 1 << 20});
    if (side_.stopping()) co_return;
    if (!routes) {
      if (!std::exchange(warned, true)) {
        spdlog::info("router of {}: {}", service.plan.service, routes.error().message);
      }
    } else {
      for (const auto& r : routes->value("routes", nlohmann::json::array())) {
        if (r.value("header", "") == target.route->header &&
            r.value("value", "") == target.route->value) {
          service.route_stats = r;
        }
      }
    }
    pause.expires_after(2s);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> ConnectSession::keep_files_current(Replaced& service) {
  asio::steady_timer pause(side_.io());
  auto wait = 2s;
  while (!side_.stopping()) {
    auto end = co_await follow_files(through(service), *service.files,
                                     [this, &service](const MirrorChange& c) {
                                       report_files_change(service, c);
                                     });
    if (side_.stopping()) co_return;
    wait = end.messages > 0 ? 2s : std::min<std::chrono::seconds>(wait * 2, 60s);
    spdlog::info("file updates of {}: {}; following again in {} s", service.plan.service,
                 end.why.message, wait.count());
    pause.expires_after(wait);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void ConnectSession::report_files_change(Replaced& service, const MirrorChange& change) {
  ++service.files_updates;
  for (const auto& [path, why] : change.failed) {
    std::fprintf(stderr, "lpk-proxy: cannot update %s: %s\n", path.c_str(), why.c_str());
  }
  for (const auto& path : change.written) spdlog::info("file updated: {}", path);
  for (const auto& path : change.removed) spdlog::info("file removed: {}", path);
  console::print_line(console::kFilesUpdated, change.written.size(), change.removed.size(),
                      service.files->root().string());
}

// "ready" promises that traffic reaching any replica of any service lands here, so it waits
// (bounded) for every agent's tunnel, not only the ones that brought the environments.
asio::awaitable<void> ConnectSession::wait_for_tunnels() {
  tunnel_came_up_.expires_after(30s);  // the bound; on_up and stop cancel the wait early
  while (!side_.stopping() && tunnels_up() < agent_count() &&
         tunnel_came_up_.expiry() > std::chrono::steady_clock::now()) {
    co_await tunnel_came_up_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

namespace {

// A command line without shell syntax is exec'd by the shell, so that the command itself gets
// the session's signals and its exit code is the command's, not a killed shell's 143. Any
// other line runs as written, in its own process group (run_child) so that signals reach it.
std::string shell_line(const std::string& line) {
  if (line.find_first_of(";&|<>()$`\\\n'\"*?[]#~{}") != std::string::npos) return line;
  auto first_word = line.substr(0, line.find(' '));
  if (first_word.find('=') != std::string::npos) return line;  // VAR=value command: no exec
  return "exec " + line;
}

std::size_t longest_name(const std::vector<ServicePlan>& services) {
  std::size_t width = 0;
  for (const auto& s : services) width = std::max(width, s.service.size());
  return width;
}

}  // namespace

// The session ends when every command has exited, with the first non-zero exit code: one
// service's command failing leaves the others running, as `docker compose up` does.
asio::awaitable<void> ConnectSession::run_commands() {
  if (!plan_.command.empty()) {
    int code = co_await run_child(*services_.front(), plan_.command, {});
    console::print_line(console::kCommandExited, code);
    side_.stop(code);
    co_return;
  }
  auto width = longest_name(plan_.services);
  std::size_t total = 0;
  for (const auto& service : services_) total += service->plan.run.empty() ? 0 : 1;
  auto exited = std::make_shared<std::pair<std::size_t, int>>(0, 0);  // how many, first failure
  for (auto& service : services_) {
    if (service->plan.run.empty()) continue;
    asio::co_spawn(side_.io(), [this, &service = *service, width, total,
                                exited]() -> asio::awaitable<void> {
      std::vector<std::string> argv{"/bin/sh", "-c", shell_line(service.plan.run)};
      int code = co_await run_child(service, std::move(argv),
                                    output_prefix(service.plan.service, width));
      console::print_line(console::kServiceCommandExited, service.plan.service, code);
      if (code != 0 && exited->second == 0) exited->second = code;
      if (++exited->first == total) side_.stop(exited->second);
    }, asio::detached);
  }
}

asio::awaitable<int> ConnectSession::run_child(Replaced& service, std::vector<std::string> argv,
                                               std::string prefix) {
  service.command.clear();
  for (const auto& a : argv) service.command += (service.command.empty() ? "" : " ") + a;
  if (dns_endpoint_.port() == 53 && ::geteuid() == 0) {
    // The child's own resolver asks the stub: a private /etc/resolv.conf, as in a pod.
    auto conf = session_dir(plan_.session_id) / "resolv.conf";
    auto text = pod_resolv_conf(dns_endpoint_.address().to_string(), plan_.ns, plan_.zone);
    if (auto written = write_private_file(conf, text, 0644); written) {
      argv = with_private_resolv_conf(argv, conf);
    } else {
      spdlog::warn("{}; the command uses the machine's resolver", written.error().message);
    }
  }
  auto env = build_child_environment(current_environment(), service.imported,
                                     service.lpk_variables);
  int pipe_fds[2] = {-1, -1};
  if (!prefix.empty() && ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "lpk-proxy: no pipe for the output of %s: %s\n",
                 service.plan.service.c_str(), std::strerror(errno));
    co_return 1;
  }
  std::shared_ptr<ChildProcess> child;
  try {
    // A `--run` command has its own process group: its shell's children get its signals.
    child = ChildProcess::start(side_.io().get_executor(), argv, to_envp(env), pipe_fds[1],
                                !prefix.empty());
  } catch (const SpawnError& e) {
    std::fprintf(stderr, "lpk-proxy: %s%s\n", prefix.c_str(), e.what());
    if (pipe_fds[0] >= 0) ::close(pipe_fds[0]), ::close(pipe_fds[1]);
    co_return e.exit_code();
  }
  service.child = child;
  if (pipe_fds[0] >= 0) {
    ::close(pipe_fds[1]);  // the child's copy is the only writer: EOF when it has gone
    asio::co_spawn(side_.io(),
                   copy_prefixed(asio::posix::stream_descriptor(side_.io(), pipe_fds[0]),
                                 prefix, STDOUT_FILENO),
                   asio::detached);
  }
  co_return co_await child->wait();
}

}  // namespace lpk::proxy
