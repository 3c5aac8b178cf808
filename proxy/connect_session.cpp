#include "proxy/connect_session.hpp"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "proxy/address_pool.hpp"
#include "proxy/agent_services.hpp"
#include "proxy/child_process.hpp"
#include "proxy/control.hpp"
#include "proxy/environment.hpp"
#include "proxy/forwarder.hpp"
#include "proxy/portforward_link.hpp"
#include "proxy/service_directory.hpp"
#include "proxy/session_paths.hpp"
#include "proxy/stub_dns.hpp"
#include "proxy/tunnel_client.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using nlohmann::json;
using namespace std::chrono_literals;

struct ConnectSession::State {
  explicit State(boost::asio::ip::network_v4 pool_range) : pool(pool_range) {}
  asio::io_context io{1};
  AddressPool pool;
  std::vector<std::unique_ptr<TunnelClient>> tunnels;
  std::vector<std::string> tunnel_pods;
  std::unique_ptr<Forwarder> forwarder;
  std::unique_ptr<ServiceDirectory> directory;
  std::shared_ptr<AgentDnsResolver> cluster_dns;
  std::unique_ptr<StubDns> dns;
  std::unique_ptr<ControlServer> control;
  std::shared_ptr<ChildProcess> child;
  asio::signal_set signals{io, SIGINT, SIGTERM};
  asio::steady_timer grace{io};
  asio::steady_timer tunnel_came_up{io};  // cancelled to wake whoever waits for the tunnels
  EnvMap imported;
  std::string imported_from;
  int exit_code = 0;
  int interrupts = 0;
  bool stopping = false;
  // Declared last so they are joined first: their posted work refers to the members above.
  std::vector<std::jthread> watches;

  void shutdown(int code) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    if (control) control->stop();
    if (dns) dns->stop();
    if (cluster_dns) cluster_dns->stop();
    if (forwarder) forwarder->stop();
    for (auto& t : tunnels) t->stop();
    tunnel_came_up.cancel();
    for (auto& w : watches) w.request_stop();
    signals.cancel();
    grace.expires_after(300ms);  // let the GOAWAYs go out
    grace.async_wait([this](boost::system::error_code) { io.stop(); });
  }

  OpenStream opener() {
    return [this](tcp::socket socket, tunnel::Target target) {
      tunnels.front()->open(std::move(socket), std::move(target));
    };
  }
};

ConnectSession::ConnectSession(SessionPlan plan, kube::Client& client)
    : plan_(std::move(plan)), client_(client) {}

ConnectSession::~ConnectSession() = default;

namespace {

/// Where inbound streams land: `--local-port`, or by default the same port numbers as the
/// container's, which is what a service run locally usually listens on.
InboundRoutes inbound_routes(const SessionPlan& plan) {
  auto routes = plan.options.inbound;
  if (!routes.any_port && routes.by_remote.empty()) {
    for (const auto& r : plan.target.container.routes) {
      routes.by_remote[r.container_port] = r.container_port;
    }
  }
  for (const auto& r : plan.target.container.routes) {
    auto local = routes.local_port_for(r.container_port);
    std::printf("inbound: %s port %u -> localhost:%s\n", plan.target.workload.describe().c_str(),
                r.container_port, local ? std::to_string(*local).c_str() : "(none: refused)");
  }
  return routes;
}

std::string resolv_conf_text(const std::string& server, const std::string& ns,
                             const std::string& zone) {
  // What the kubelet writes for dnsPolicy ClusterFirst (k8s-notes §4), pointing at the stub.
  return "nameserver " + server + "\nsearch " + ns + ".svc." + zone + " svc." + zone + " " +
         zone + "\noptions ndots:5\n";
}

std::unique_ptr<StubDns> start_dns(asio::io_context& io, const ConnectOptions& options,
                                   AddressPool& pool, const std::string& ns,
                                   const dns::TableSpec& table, dns::ClusterResolver* cluster) {
  StubDnsOptions dns_options;
  dns_options.zone = options.zone;
  dns_options.session_namespace = ns;
  dns_options.resolv_conf = options.resolv_conf;
  if (options.dns) {
    dns_options.listen = *options.dns;
    return std::make_unique<StubDns>(io, dns_options, table, cluster);
  }
  // Port 53 lets a resolv.conf point at the stub; without the privilege, any free port.
  auto address = asio::ip::address(*pool.allocate("dns.lpk.internal"));
  for (std::uint16_t port : {53, 0}) {
    dns_options.listen = asio::ip::udp::endpoint(address, port);
    try {
      return std::make_unique<StubDns>(io, dns_options, table, cluster);
    } catch (const boost::system::system_error& e) {
      if (port == 0) throw;
      spdlog::info("stub DNS cannot use port 53 ({}); using a free port", e.code().message());
    }
  }
  return nullptr;
}

}  // namespace

int ConnectSession::run() {
  State s(plan_.options.pool);
  const auto& options = plan_.options;
  auto inbound = std::make_shared<LocalDialer>(inbound_routes(plan_), 10s);

  for (const auto& pod : plan_.agent_pods) {
    auto name = pod["metadata"].value("name", "");
    auto dial = portforward_link_dialer(client_.config(), client_.credentials(), plan_.ns, name,
                                        plan_.target.tunnel_port);
    auto tunnel = std::make_unique<TunnelClient>(s.io.get_executor(), std::move(dial),
                                                 tunnel::SessionOptions{}, inbound);
    tunnel->wait_for_tunnel = 30s;
    tunnel->on_up = [&s, name](tunnel::Session& session) {
      std::printf("tunnel up: pod %s (session %s)\n", name.c_str(), session.id_text().c_str());
      std::fflush(stdout);
      s.tunnel_came_up.cancel();
    };
    tunnel->on_fatal = [&s, name](const std::string& why) {
      std::fprintf(stderr, "lpk-proxy: tunnel to pod %s: %s\n", name.c_str(), why.c_str());
      s.shutdown(1);
    };
    s.tunnels.push_back(std::move(tunnel));
    s.tunnel_pods.push_back(name);
  }

  // Outbound streams ride the first agent's tunnel; every tunnel carries inbound streams.
  s.forwarder = std::make_unique<Forwarder>(s.io.get_executor(), *s.tunnels.front());
  s.directory = std::make_unique<ServiceDirectory>(*s.forwarder, s.pool, plan_.ns, options.zone);
  std::vector<std::string> namespaces{plan_.ns};
  for (const auto& ns : options.extra_namespaces) {
    if (std::find(namespaces.begin(), namespaces.end(), ns) == namespaces.end()) {
      namespaces.push_back(ns);
    }
  }
  for (const auto& ns : namespaces) {
    s.directory->replace_namespace(ns, client_.list(kube::resource_path("v1", ns, "services"))["items"]);
  }
  s.cluster_dns = std::make_shared<AgentDnsResolver>(s.io.get_executor(), s.opener());
  s.dns = start_dns(s.io, options, s.pool, plan_.ns, s.directory->table(), s.cluster_dns.get());
  s.directory->on_change = [&s] {
    if (s.dns && !s.stopping) s.dns->set_table(s.directory->table());
  };
  auto dns_endpoint = s.dns->endpoint();
  std::printf("dns %s:%u\n", dns_endpoint.address().to_string().c_str(), dns_endpoint.port());
  for (const auto& service : s.directory->describe()) {
    std::printf("service %s.%s -> %s ports %s\n", service["name"].get<std::string>().c_str(),
                service["namespace"].get<std::string>().c_str(),
                service["address"].get<std::string>().c_str(), service["ports"].dump().c_str());
  }
  std::fflush(stdout);

  start_watches(s, namespaces);
  start_control(s, dns_endpoint);
  s.signals.async_wait([this, &s](boost::system::error_code ec, int signal) {
    if (!ec) on_signal(s, signal);
  });
  s.forwarder->start();
  for (auto& t : s.tunnels) t->start();
  asio::co_spawn(s.io, prepare_and_run(s, dns_endpoint), asio::detached);
  s.io.run();
  s.watches.clear();  // joins: each notices its stop token within about a second
  return s.exit_code;
}

void ConnectSession::on_signal(State& s, int signal) {
  bool child_running = s.child && !s.child->exit_code();
  if (!child_running) {
    s.shutdown(0);
    return;
  }
  // Ctrl-C reached the child too (same process group); give it the chance to exit on its own.
  if (signal == SIGTERM || ++s.interrupts > 1) {
    asio::co_spawn(s.io, [child = s.child]() -> asio::awaitable<void> {
      co_await child->terminate(5s);
    }, asio::detached);
  } else {
    std::printf("waiting for the command to exit (Ctrl-C again stops it)\n");
    std::fflush(stdout);
  }
  s.signals.async_wait([this, &s](boost::system::error_code ec, int next) {
    if (!ec) on_signal(s, next);
  });
}

void ConnectSession::start_watches(State& s, const std::vector<std::string>& namespaces) {
  for (const auto& ns : namespaces) {
    s.watches.emplace_back([this, &s, ns](std::stop_token stop) {
      auto path = kube::resource_path("v1", ns, "services");
      while (!stop.stop_requested()) {
        try {
          client_.watch(
              path, {},
              [&s, ns](const json& list) {
                asio::post(s.io, [&s, ns, items = list.value("items", json::array())] {
                  if (!s.stopping) s.directory->replace_namespace(ns, items);
                });
              },
              [&s](const kube::WatchEvent& event) {
                asio::post(s.io, [&s, event] {
                  if (s.stopping) return;
                  if (event.type == "DELETED") s.directory->remove(event.object);
                  else s.directory->upsert(event.object);
                });
              },
              stop);
        } catch (const std::exception& e) {
          spdlog::warn("watching the services of {}: {}; trying again in 5 s", ns, e.what());
          for (int i = 0; i < 50 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(100ms);
        }
      }
    });
  }
}

json ConnectSession::status(State& s, const asio::ip::udp::endpoint& dns) const {
  json tunnels = json::array();
  for (std::size_t i = 0; i < s.tunnels.size(); ++i) {
    auto session = s.tunnels[i]->session();
    json t = {{"pod", s.tunnel_pods[i]}, {"state", session ? "ready" : "connecting"}};
    if (session) {
      auto stats = session->stats();
      t["rtt_ms"] = stats.rtt.count() / 1000.0;
      t["streams"] = stats.streams_active;
      t["streams_total"] = stats.streams_opened;
      t["bytes_sent"] = stats.bytes_sent;
      t["bytes_received"] = stats.bytes_received;
    }
    tunnels.push_back(t);
  }
  json child = nullptr;
  if (s.child) {
    std::string command;
    for (const auto& a : plan_.options.command) command += (command.empty() ? "" : " ") + a;
    child = {{"pid", s.child->pid()}, {"command", command}};
  }
  return {{"service", plan_.options.service},
          {"namespace", plan_.ns},
          {"workload", plan_.target.workload.describe()},
          {"container", plan_.target.container.name},
          {"pid", static_cast<int>(::getpid())},
          {"child", child},
          {"dns", {{"address", dns.address().to_string() + ":" + std::to_string(dns.port())}}},
          {"services", s.directory->describe()},
          {"tunnels", tunnels}};
}

void ConnectSession::start_control(State& s, const asio::ip::udp::endpoint& dns) {
  s.control = std::make_unique<ControlServer>(s.io.get_executor(), plan_.session_id,
                                              control_socket_path(plan_.session_id));
  s.control->handle("status", [this, &s, dns] { return status(s, dns); });
  s.control->handle("env", [&s] { return json{{"env", s.imported}, {"from", s.imported_from}}; });
  s.control->handle("diagnostics", [this, &s, dns] {
    auto d = status(s, dns);
    json routes = json::array();
    for (const auto& r : plan_.target.container.routes) {
      routes.push_back({{"service_port", r.service_port}, {"container_port", r.container_port},
                        {"name", r.name}});
    }
    d["routes"] = routes;
    d["mounts"] = plan_.target.mounts;
    d["log_dir"] = log_dir(plan_.session_id).string();
    d["session_dir"] = session_dir(plan_.session_id).string();
    d["dns_table_services"] = s.directory->table().services.size();
    return d;
  });
  std::string problem;
  if (s.control->start(problem)) {
    spdlog::warn("no control socket: {}", problem);
    std::fprintf(stderr, "lpk-proxy: %s; `lpk-proxy status` will not see this session\n",
                 problem.c_str());
  }
}

asio::awaitable<void> ConnectSession::prepare_and_run(State& s, asio::ip::udp::endpoint dns) {
  const auto& options = plan_.options;
  AgentEnvironment environment;
  auto fetched = co_await fetch_environment(s.opener());
  if (fetched) {
    environment = std::move(*fetched);
  } else {
    std::fprintf(stderr, "lpk-proxy: cannot import the container's environment: %s\n",
                 fetched.error().message.c_str());
  }
  if (s.stopping) co_return;
  EnvMap imported = environment.env;
  auto links = rewrite_service_links(imported, s.directory->linked_services());
  auto files = write_imported_files(environment.files, session_dir(plan_.session_id));
  for (const auto& [path, why] : files.failed) {
    std::fprintf(stderr, "lpk-proxy: cannot write %s: %s\n", path.c_str(), why.c_str());
  }
  for (const auto& skipped : environment.skipped) {
    std::printf("not imported: %s (%s)\n", skipped.path.c_str(), skipped.reason.c_str());
  }
  auto lpk = lpk_variables(plan_.session_id, files.root);
  s.imported = imported;
  s.imported_from = environment.pod_name;
  std::printf("environment: %zu variables from pod %s (%zu service links point at lpk), "
              "%zu files under %s\n",
              imported.size(), environment.pod_name.c_str(), links.rewritten.size(),
              files.written.size(), files.root.c_str());
  if (!options.env_file.empty()) {
    auto everything = imported;
    for (const auto& [k, v] : lpk) everything[k] = v;
    std::vector<std::string> left_out;
    if (auto ec = write_env_file(options.env_file, everything, left_out)) {
      std::fprintf(stderr, "lpk-proxy: cannot write --env-file %s: %s\n",
                   options.env_file.c_str(), ec.message().c_str());
    } else {
      std::printf("env file: %s\n", options.env_file.c_str());
    }
  }
  // "ready" promises that traffic reaching any replica lands here, so it waits (bounded)
  // for every agent's tunnel, not only the one that brought the environment.
  auto connected = [&s] {
    std::size_t n = 0;
    for (const auto& t : s.tunnels) n += t->session() != nullptr;
    return n;
  };
  s.tunnel_came_up.expires_after(30s);  // the bound; on_up and shutdown cancel the wait early
  while (!s.stopping && connected() < s.tunnels.size() &&
         s.tunnel_came_up.expiry() > std::chrono::steady_clock::now()) {
    co_await s.tunnel_came_up.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (s.stopping) co_return;
  std::printf("tunnels: %zu of %zu agents connected\n", connected(), s.tunnels.size());
  std::printf("ready\n");
  std::fflush(stdout);
  if (options.command.empty()) co_return;

  auto argv = options.command;
  if (dns.port() == 53 && ::geteuid() == 0) {
    // The child's own resolver asks the stub: a private /etc/resolv.conf, as in a pod.
    auto conf = session_dir(plan_.session_id) / "resolv.conf";
    write_private_file(conf, resolv_conf_text(dns.address().to_string(), plan_.ns, options.zone),
                       0644);
    std::vector<std::string> wrapped{std::filesystem::read_symlink("/proc/self/exe").string(),
                                     "__child", "--resolv-conf", conf.string(), "--"};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    argv = std::move(wrapped);
  }
  auto child_env = build_child_environment(current_environment(), imported, lpk);
  try {
    s.child = ChildProcess::start(s.io.get_executor(), argv, to_envp(child_env));
  } catch (const SpawnError& e) {
    std::fprintf(stderr, "lpk-proxy: %s\n", e.what());
    s.shutdown(e.exit_code());
    co_return;
  }
  auto child = s.child;
  int code = co_await child->wait();
  std::printf("command exited with %d\n", code);
  std::fflush(stdout);
  s.shutdown(code);
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
