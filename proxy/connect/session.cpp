#include "proxy/connect/session.hpp"

#include "proxy/connect/env_tokens.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <set>
#include <cstdio>

#include "proxy/control/console.hpp"
#include "proxy/control/session_paths.hpp"
#include "proxy/forward/portforward_link.hpp"
#include "proxy/takeover/workload.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// Where inbound streams land: `--local-port`, or by default the same port numbers as the
/// container's, which is what a service run locally usually listens on.
InboundRoutes inbound_routes(const SessionPlan& plan) {
  auto routes = plan.inbound;
  if (!routes.any_port && routes.by_remote.empty()) {
    for (const auto& r : plan.target.container.routes) {
      routes.by_remote[r.container_port] = r.container_port;
    }
  }
  for (const auto& r : plan.target.container.routes) {
    auto local = routes.local_port_for(r.container_port);
    console::print_line(console::kInbound, plan.target.workload.describe(), r.container_port,
                        local ? std::to_string(*local) : std::string("(none: refused)"));
  }
  return routes;
}

}  // namespace

ConnectSession::ConnectSession(SessionPlan plan, kube::Client& client, AgentLinks links)
    : plan_(std::move(plan)),
      client_(client),
      links_(std::move(links)),
      side_(plan_.pool),
      // First, so that it is the one the name hashes to (what `connect` checked was free).
      dns_address_(side_.pool().allocate(AddressPool::kStubDnsName).value()),
      tunnel_came_up_(side_.io()) {}

ConnectSession::~ConnectSession() = default;

int ConnectSession::run() {
  // The io_context's signal handling is in place since the constructor; a signal that came
  // before it only set the flag, and must not be lost.
  if (plan_.interrupted && plan_.interrupted->load()) return 0;
  open_tunnels();
  start_directory();
  start_dns();
  point_system_resolver();
  for (const auto& service : directory_->describe()) {
    console::print_line(console::kService, service["name"].get<std::string>(),
                        service["namespace"].get<std::string>(),
                        service["address"].get<std::string>(), service["ports"].dump());
  }
  start_informers();
  start_agent_informer();
  start_control();
  side_.on_signal = [this](int signal) { on_signal(signal); };
  side_.on_stop = [this] {
    if (control_) control_->stop();
    if (cluster_dns_) cluster_dns_->stop();
    tunnel_came_up_.cancel();
    for (auto& informer : informers_) informer->request_stop();
  };
  asio::co_spawn(side_.io(), serve(), asio::detached);
  int code = side_.run();
  informers_.clear();  // joins: each notices its stop within about a second
  return code;
}

void ConnectSession::open_tunnels() {
  inbound_ = std::make_shared<LocalDialer>(inbound_routes(plan_), 10s);
  agent_template_ = kube::template_of(plan_.target.workload.kind, plan_.target.object);
  for (const auto& pod : plan_.agent_pods) add_agent(pod["metadata"].value("name", ""));
}

void ConnectSession::add_agent(const std::string& name) {
  if (name.empty() || agents_.count(name) || side_.stopping()) return;
  auto dial = links_ ? links_(name)
                     : portforward_link_dialer(client_.config(), client_.credentials(), plan_.ns,
                                               name, plan_.target.tunnel_port);
  tunnel::SessionOptions options;
  options.dead_link_timeout = plan_.dead_link_timeout;
  options.resume_grace = plan_.resume_grace;
  options.secret = plan_.secret;
  auto tunnel = side_.add_tunnel(std::move(dial), options, inbound_);
  tunnel->wait_for_tunnel = 30s;
  tunnel->on_up = [this, name](tunnel::Session& session) {
    console::print_line(console::kTunnelUp, name, session.id_text());
    tunnel_came_up_.cancel();
  };
  tunnel->on_fatal = [this, name](const std::string& why) {
    std::fprintf(stderr, "lpk-proxy: tunnel to pod %s: %s\n", name.c_str(), why.c_str());
    side_.stop(1);
  };
  agents_.emplace(name, std::move(tunnel));
}

void ConnectSession::remove_agent(const std::string& name, const std::string& why) {
  auto it = agents_.find(name);
  if (it == agents_.end()) return;
  it->second->on_up = nullptr;  // it may still finish a handshake while it stops
  it->second->on_fatal = nullptr;
  side_.remove_tunnel(it->second);
  agents_.erase(it);
  console::print_line(console::kTunnelClosed, name, why);
  tunnel_came_up_.cancel();  // `ready` may be waiting for this one
}

namespace {

/// Why agent pod `pod` should have no tunnel, or "" when it should have one: it runs the agent
/// and the port-forward can reach it (Running, not being deleted, not finished).
std::string no_tunnel_reason(const json& pod, const json& agent_template) {
  if (!kube::pod_active(pod)) {
    return pod["metadata"].contains("deletionTimestamp") ? "deleted" : "finished";
  }
  if (pod["status"].value("phase", "") != "Running") return "not running";
  if (!runs_template(pod, agent_template)) return "not an agent";
  return {};
}

}  // namespace

void ConnectSession::reconcile_agent(const json& pod) {
  auto name = pod["metadata"].value("name", "");
  if (auto why = no_tunnel_reason(pod, agent_template_); why.empty()) {
    add_agent(name);
  } else if (why != "not running") {  // a pod that is only starting keeps the tunnel it has
    remove_agent(name, why);
  }
}

void ConnectSession::reconcile_agents(const json& pods) {
  std::set<std::string> listed;
  for (const auto& pod : pods) {
    listed.insert(pod["metadata"].value("name", ""));
    reconcile_agent(pod);
  }
  std::vector<std::string> gone;
  for (const auto& [name, tunnel] : agents_) {
    if (!listed.count(name)) gone.push_back(name);
  }
  for (const auto& name : gone) remove_agent(name, "deleted");
}

void ConnectSession::on_pod_event(const kube::WatchEvent& event) {
  if (event.type == "DELETED") {
    remove_agent(event.object["metadata"].value("name", ""), "deleted");
  } else {
    reconcile_agent(event.object);
  }
}

void ConnectSession::start_agent_informer() {
  const auto& ref = plan_.target.workload;
  kube::Informer::Handlers handlers;
  handlers.on_list = [this](const json& items) {
    asio::post(side_.io(), [this, items] {
      if (!side_.stopping()) reconcile_agents(items);
    });
  };
  handlers.on_event = [this](const kube::WatchEvent& event) {
    asio::post(side_.io(), [this, event] {
      if (!side_.stopping()) on_pod_event(event);
    });
  };
  handlers.on_error = [what = ref.describe()](const std::string& problem,
                                              std::chrono::seconds retry_in) {
    spdlog::warn("watching the pods of {}: {}; trying again in {} s", what, problem,
                 retry_in.count());
  };
  informers_.push_back(std::make_unique<kube::Informer>(
      client_, kube::resource_path("v1", ref.ns, "pods"), pods_of(ref, plan_.target.object),
      std::move(handlers)));
}

std::vector<std::string> ConnectSession::namespaces() const {
  std::vector<std::string> all{plan_.ns};
  for (const auto& ns : plan_.extra_namespaces) {
    if (std::find(all.begin(), all.end(), ns) == all.end()) all.push_back(ns);
  }
  return all;
}

void ConnectSession::start_directory() {
  directory_ = std::make_unique<ServiceDirectory>(side_.forwarder(), side_.pool(), plan_.ns,
                                                  plan_.zone);
  // The first list is synchronous: `ready` promises every service has its name and listener.
  for (const auto& ns : namespaces()) {
    auto list = client_.list(kube::resource_path("v1", ns, "services"));
    directory_->replace_namespace(ns, list.value("items", json::array()));
  }
}

void ConnectSession::point_system_resolver() {
  if (!plan_.system_resolver) return;
  dns::ResolverConfig config;
  config.zone = plan_.zone;
  config.ns = plan_.ns;
  const auto stub = side_.dns()->endpoint();
  config.address = stub.address();
  config.port = stub.port();
  // The stub is bound but answers only once the io_context runs, after this: no probe.
  config.force = true;
  resolver_ = SessionResolver::install(config, SessionOwner::current(plan_.session_id)).value();
  console::print_line(console::kResolver, resolver_->config().mode, config.address.to_string(),
                      config.port);
}

void ConnectSession::start_dns() {
  const auto& options = plan_;
  cluster_dns_ = std::make_shared<AgentDnsResolver>(side_.io().get_executor(), side_.outbound());
  StubDnsOptions dns{{}, options.zone, plan_.ns, options.resolv_conf};
  auto table = directory_->table();
  tunnel::Result<void> started;
  if (options.dns) {
    dns.listen = *options.dns;
    started = side_.start_dns(dns, table, cluster_dns_.get());
  } else {
    // Port 53 lets a resolv.conf name the stub; the address is this session's own (its slot's),
    // so the port is free unless something outside lpk holds it, or lpk lacks the privilege.
    dns.listen = asio::ip::udp::endpoint(dns_address_, 53);
    started = side_.start_dns(dns, table, cluster_dns_.get());
    if (!started) {
      auto why = started.error().message;
      dns.listen.port(0);
      started = side_.start_dns(dns, table, cluster_dns_.get());
      if (started) {
        std::fprintf(stderr,
                     "lpk-proxy: %s; the stub DNS listens on port %u instead, which a "
                     "resolv.conf cannot name (the command gets the machine's resolver)\n",
                     why.c_str(), unsigned(side_.dns()->endpoint().port()));
      }
    }
  }
  started.value();  // throws with the Problem's sentence
  directory_->on_change = [this] {
    if (side_.dns() && !side_.stopping()) side_.dns()->set_table(directory_->table());
  };
  dns_endpoint_ = side_.dns()->endpoint();
  console::print_line(console::kDns, dns_endpoint_.address().to_string(), dns_endpoint_.port());
}

void ConnectSession::start_informers() {
  for (const auto& ns : namespaces()) {
    kube::Informer::Handlers handlers;
    handlers.on_list = [this, ns](const json& items) {
      asio::post(side_.io(), [this, ns, items] {
        if (!side_.stopping()) directory_->replace_namespace(ns, items);
      });
    };
    handlers.on_event = [this](const kube::WatchEvent& event) {
      asio::post(side_.io(), [this, event] {
        if (side_.stopping()) return;
        if (event.type == "DELETED") directory_->remove(event.object);
        else directory_->upsert(event.object);
      });
    };
    handlers.on_error = [ns](const std::string& problem, std::chrono::seconds retry_in) {
      spdlog::warn("watching the services of {}: {}; trying again in {} s", ns, problem,
                   retry_in.count());
    };
    informers_.push_back(std::make_unique<kube::Informer>(
        client_, kube::resource_path("v1", ns, "services"), kube::ListOptions{},
        std::move(handlers)));
  }
}

void ConnectSession::on_signal(int signal) {
  bool child_running = child_ && !child_->exit_code();
  if (!child_running) {
    side_.stop(0);
    return;
  }
  // Ctrl-C reached the child too (same process group); give it the chance to exit on its own.
  // SIGTERM and SIGHUP (the terminal or the IDE's task closed) end the session at once.
  if (signal != SIGINT || ++interrupts_ > 1) {
    asio::co_spawn(side_.io(), [child = child_]() -> asio::awaitable<void> {
      co_await child->terminate(5s);
    }, asio::detached);
  } else {
    console::print_line(console::kWaitingForCommand);
  }
}

std::size_t ConnectSession::tunnels_up() const {
  std::size_t n = 0;
  for (const auto& [pod, t] : agents_) n += t->session() && !t->session()->detached();
  return n;
}

json ConnectSession::status() const {
  json tunnels = json::array();
  for (const auto& [pod, tunnel] : agents_) {
    auto session = tunnel->session();
    const char* state = !session                      ? "connecting"
                        : session->accepting_streams() ? "ready"
                                                       : "resuming";
    json t = {{"pod", pod}, {"state", state}};
    const auto& history = tunnel->history();
    t["drops"] = history.drops;
    if (history.drops > 0) {
      t["last_drop"] = history.last_drop;
      t["last_drop_at"] = std::chrono::duration_cast<std::chrono::seconds>(
                              history.last_drop_at.time_since_epoch()).count();
      t["resumes"] = history.resumes;
      t["resumed_streams"] = history.resumed_streams;
      t["lost_streams"] = history.lost_streams;
      t["retransmitted_bytes"] = history.retransmitted_bytes;
    }
    if (session) {
      auto stats = session->stats();
      t["rtt_ms"] = stats.rtt.count() / 1000.0;
      t["streams"] = stats.streams_active;
      t["streams_total"] = stats.streams_opened;
      t["bytes_sent"] = stats.bytes_sent;
      t["bytes_received"] = stats.bytes_received;
      t["bytes_held"] = stats.bytes_held;
    }
    tunnels.push_back(t);
  }
  json child = nullptr;
  if (child_) {
    std::string command;
    for (const auto& a : plan_.command) command += (command.empty() ? "" : " ") + a;
    child = {{"pid", child_->pid()}, {"command", command}};
  }
  auto dns = dns_endpoint_.address().to_string() + ":" + std::to_string(dns_endpoint_.port());
  return {{"service", plan_.service},
          {"namespace", plan_.ns},
          {"workload", plan_.target.workload.describe()},
          {"container", plan_.target.container.name},
          {"pid", static_cast<int>(::getpid())},
          {"child", child},
          {"dns", {{"address", dns}}},
          {"files", files_ ? json{{"root", files_->root().string()},
                                  {"count", files_->size()},
                                  {"updates", files_updates_}}
                           : json(nullptr)},
          {"services", directory_->describe()},
          {"tunnels", tunnels}};
}

json ConnectSession::diagnostics() const {
  auto d = status();
  json routes = json::array();
  for (const auto& r : plan_.target.container.routes) {
    routes.push_back({{"service_port", r.service_port}, {"container_port", r.container_port},
                      {"name", r.name}});
  }
  d["routes"] = routes;
  d["mounts"] = plan_.target.mounts;
  d["address_slot"] = plan_.pool.to_string();
  d["log_dir"] = log_dir(plan_.session_id).string();
  d["session_dir"] = session_dir(plan_.session_id).string();
  d["dns_table_services"] = directory_->table().services.size();
  return d;
}

void ConnectSession::start_control() {
  control_ = std::make_unique<ControlServer>(side_.io().get_executor(), plan_.session_id,
                                             control_socket_path(plan_.session_id));
  control_->handle("status", [this] { return status(); });
  control_->handle("env", [this] { return json{{"env", imported_}, {"from", imported_from_}}; });
  control_->handle("diagnostics", [this] { return diagnostics(); });
  if (auto started = control_->start(); !started) {
    spdlog::warn("no control socket: {}", started.error().message);
    std::fprintf(stderr, "lpk-proxy: %s; `lpk-proxy status` will not see this session\n",
                 started.error().message.c_str());
  }
}

asio::awaitable<void> ConnectSession::serve() {
  co_await import_environment();
  if (side_.stopping()) co_return;
  asio::co_spawn(side_.io(), keep_files_current(), asio::detached);
  co_await wait_for_tunnels();
  if (side_.stopping()) co_return;
  console::print_line(console::kTunnels, tunnels_up(), agents_.size());
  console::print_line(console::kReady);
  if (plan_.command.empty()) co_return;
  co_await run_child();
}

asio::awaitable<void> ConnectSession::import_environment() {
  const auto& options = plan_;
  tunnel::AgentEnvironment environment;
  if (auto fetched = co_await fetch_environment(side_.outbound())) {
    environment = std::move(*fetched);
  } else {
    std::fprintf(stderr, "lpk-proxy: cannot import the container's environment: %s\n",
                 fetched.error().message.c_str());
  }
  if (side_.stopping()) co_return;
  imported_ = environment.env;
  imported_from_ = environment.pod_name;
  auto links = rewrite_service_links(imported_, directory_->linked_services());
  files_ = std::make_unique<FileMirror>(session_dir(plan_.session_id) / "files", plan_.skip_files);
  auto files = files_->apply({true, environment.files, {}, {}});
  for (const auto& path : files.skipped) console::print_line(console::kNotImported, path, "skipped");
  for (const auto& [path, why] : files.failed) {
    std::fprintf(stderr, "lpk-proxy: cannot write %s: %s\n", path.c_str(), why.c_str());
  }
  for (const auto& skipped : environment.skipped) {
    console::print_line(console::kNotImported, skipped.path, skipped.reason);
  }
  lpk_variables_ = lpk_variables(plan_.session_id, files_->root());
  // --env (lpk.yaml's env) over everything, its tokens filled in now that services have addresses.
  EnvTokenLookup lookup{[this](const std::string& name, const std::string& ns) {
                          return directory_->address_of(name, ns.empty() ? plan_.ns : ns);
                        }, files_->root()};
  for (const auto& line : lay_env_overrides(plan_.env_overrides, lookup, lpk_variables_)) {
    std::fprintf(stderr, "lpk-proxy: %s\n", line.c_str());
  }
  console::print_line(console::kEnvironment, imported_.size(), environment.pod_name,
                      links.rewritten.size(), files.written.size(), files_->root().string());
  if (options.env_file.empty()) co_return;
  auto everything = imported_;
  for (const auto& [k, v] : lpk_variables_) everything[k] = v;
  std::vector<std::string> left_out;
  if (auto written = write_env_file(options.env_file, everything, left_out); !written) {
    std::fprintf(stderr, "lpk-proxy: cannot write --env-file %s: %s\n", options.env_file.c_str(),
                 written.error().message.c_str());
  } else {
    console::print_line(console::kEnvFile, options.env_file);
  }
}

// The stream is opened on whichever tunnel carries outbound streams now, and again after it
// ends (the agent pod went, the tunnel was replaced): its first message is the whole set, so
// nothing changed in between is missed. An agent without the service refuses the stream; the
// retries then slow down to one a minute.
asio::awaitable<void> ConnectSession::keep_files_current() {
  asio::steady_timer pause(side_.io());
  auto wait = 2s;
  while (!side_.stopping()) {
    auto end = co_await follow_files(side_.outbound(), *files_,
                                     [this](const MirrorChange& c) { report_files_change(c); });
    if (side_.stopping()) co_return;
    wait = end.messages > 0 ? 2s : std::min<std::chrono::seconds>(wait * 2, 60s);
    spdlog::info("file updates: {}; following again in {} s", end.why.message, wait.count());
    pause.expires_after(wait);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void ConnectSession::report_files_change(const MirrorChange& change) {
  ++files_updates_;
  for (const auto& [path, why] : change.failed) {
    std::fprintf(stderr, "lpk-proxy: cannot update %s: %s\n", path.c_str(), why.c_str());
  }
  for (const auto& path : change.written) spdlog::info("file updated: {}", path);
  for (const auto& path : change.removed) spdlog::info("file removed: {}", path);
  console::print_line(console::kFilesUpdated, change.written.size(), change.removed.size(),
                      files_->root().string());
}

// "ready" promises that traffic reaching any replica lands here, so it waits (bounded) for every
// agent's tunnel, not only the one that brought the environment.
asio::awaitable<void> ConnectSession::wait_for_tunnels() {
  tunnel_came_up_.expires_after(30s);  // the bound; on_up and stop cancel the wait early
  while (!side_.stopping() && tunnels_up() < agents_.size() &&
         tunnel_came_up_.expiry() > std::chrono::steady_clock::now()) {
    co_await tunnel_came_up_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> ConnectSession::run_child() {
  auto argv = plan_.command;
  if (dns_endpoint_.port() == 53 && ::geteuid() == 0) {
    // The child's own resolver asks the stub: a private /etc/resolv.conf, as in a pod.
    auto conf = session_dir(plan_.session_id) / "resolv.conf";
    auto text = pod_resolv_conf(dns_endpoint_.address().to_string(), plan_.ns,
                                plan_.zone);
    if (auto written = write_private_file(conf, text, 0644); written) {
      argv = with_private_resolv_conf(argv, conf);
    } else {
      spdlog::warn("{}; the command uses the machine's resolver", written.error().message);
    }
  }
  auto env = build_child_environment(current_environment(), imported_, lpk_variables_);
  try {
    child_ = ChildProcess::start(side_.io().get_executor(), argv, to_envp(env));
  } catch (const SpawnError& e) {
    std::fprintf(stderr, "lpk-proxy: %s\n", e.what());
    side_.stop(e.exit_code());
    co_return;
  }
  auto child = child_;
  int code = co_await child->wait();
  console::print_line(console::kCommandExited, code);
  side_.stop(code);
}

}  // namespace lpk::proxy
