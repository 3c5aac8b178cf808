#include "proxy/connect/session.hpp"

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
InboundRoutes inbound_routes(const ServicePlan& plan) {
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
      tunnel_came_up_(side_.io()) {
  for (const auto& service : plan_.services) {
    services_.push_back(std::make_unique<Replaced>());
    services_.back()->plan = service;
  }
}

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
  for (auto& service : services_) start_agent_informer(*service);
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

// Each service's inbound streams land on its own local ports: its agents' tunnels carry its
// own dialer.
void ConnectSession::open_tunnels() {
  for (auto& service : services_) {
    const auto& target = service->plan.target;
    service->inbound = std::make_shared<LocalDialer>(inbound_routes(service->plan), 10s);
    service->agent_template = kube::template_of(target.workload.kind, target.object);
    for (const auto& pod : service->plan.agent_pods) {
      add_agent(*service, pod["metadata"].value("name", ""));
    }
  }
}

void ConnectSession::add_agent(Replaced& service, const std::string& name) {
  if (name.empty() || service.agents.count(name) || side_.stopping()) return;
  auto dial = links_ ? links_(name)
                     : portforward_link_dialer(client_.config(), client_.credentials(), plan_.ns,
                                               name, service.plan.target.tunnel_port);
  tunnel::SessionOptions options;
  options.dead_link_timeout = plan_.dead_link_timeout;
  options.resume_grace = plan_.resume_grace;
  options.secret = plan_.secret;
  auto tunnel = side_.add_tunnel(std::move(dial), options, service.inbound);
  tunnel->wait_for_tunnel = 30s;
  tunnel->on_up = [this, name](tunnel::Session& session) {
    console::print_line(console::kTunnelUp, name, session.id_text());
    tunnel_came_up_.cancel();
  };
  tunnel->on_fatal = [this, name](const std::string& why) {
    std::fprintf(stderr, "lpk-proxy: tunnel to pod %s: %s\n", name.c_str(), why.c_str());
    side_.stop(1);
  };
  service.agents.emplace(name, std::move(tunnel));
}

void ConnectSession::remove_agent(Replaced& service, const std::string& name,
                                  const std::string& why) {
  auto it = service.agents.find(name);
  if (it == service.agents.end()) return;
  it->second->on_up = nullptr;  // it may still finish a handshake while it stops
  it->second->on_fatal = nullptr;
  side_.remove_tunnel(it->second);
  service.agents.erase(it);
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

void ConnectSession::reconcile_agent(Replaced& service, const json& pod) {
  auto name = pod["metadata"].value("name", "");
  if (auto why = no_tunnel_reason(pod, service.agent_template); why.empty()) {
    add_agent(service, name);
  } else if (why != "not running") {  // a pod that is only starting keeps the tunnel it has
    remove_agent(service, name, why);
  }
}

void ConnectSession::reconcile_agents(Replaced& service, const json& pods) {
  std::set<std::string> listed;
  for (const auto& pod : pods) {
    listed.insert(pod["metadata"].value("name", ""));
    reconcile_agent(service, pod);
  }
  std::vector<std::string> gone;
  for (const auto& [name, tunnel] : service.agents) {
    if (!listed.count(name)) gone.push_back(name);
  }
  for (const auto& name : gone) remove_agent(service, name, "deleted");
}

void ConnectSession::on_pod_event(Replaced& service, const kube::WatchEvent& event) {
  if (event.type == "DELETED") {
    remove_agent(service, event.object["metadata"].value("name", ""), "deleted");
  } else {
    reconcile_agent(service, event.object);
  }
}

void ConnectSession::start_agent_informer(Replaced& service) {
  const auto& ref = service.plan.target.workload;
  kube::Informer::Handlers handlers;
  handlers.on_list = [this, &service](const json& items) {
    asio::post(side_.io(), [this, &service, items] {
      if (!side_.stopping()) reconcile_agents(service, items);
    });
  };
  handlers.on_event = [this, &service](const kube::WatchEvent& event) {
    asio::post(side_.io(), [this, &service, event] {
      if (!side_.stopping()) on_pod_event(service, event);
    });
  };
  handlers.on_error = [what = ref.describe()](const std::string& problem,
                                              std::chrono::seconds retry_in) {
    spdlog::warn("watching the pods of {}: {}; trying again in {} s", what, problem,
                 retry_in.count());
  };
  informers_.push_back(std::make_unique<kube::Informer>(
      client_, kube::resource_path("v1", ref.ns, "pods"), pods_of(ref, service.plan.target.object),
      std::move(handlers)));
}

OpenStream ConnectSession::through(Replaced& service) {
  return [&service](asio::ip::tcp::socket socket, tunnel::Target target) {
    std::shared_ptr<tunnel::TunnelClient> chosen;
    for (const auto& [pod, tunnel] : service.agents) {
      auto session = tunnel->session();
      if (!chosen || (session && session->accepting_streams())) chosen = tunnel;
      if (session && session->accepting_streams()) break;
    }
    // None: the socket closes, and whoever opened it tries again later.
    if (chosen) chosen->open(std::move(socket), std::move(target));
  };
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

bool ConnectSession::commands_running() const {
  return std::any_of(services_.begin(), services_.end(), [](const auto& s) {
    return s->child && !s->child->exit_code();
  });
}

void ConnectSession::on_signal(int signal) {
  if (!commands_running()) {
    side_.stop(0);
    return;
  }
  // Ctrl-C reached the children too (same process group); give them the chance to exit on
  // their own. SIGTERM and SIGHUP (the terminal or the IDE's task closed) end the session at once.
  if (signal != SIGINT || ++interrupts_ > 1) {
    for (auto& service : services_) {
      if (!service->child) continue;
      asio::co_spawn(side_.io(), [child = service->child]() -> asio::awaitable<void> {
        co_await child->terminate(5s);
      }, asio::detached);
    }
  } else {
    // A `--run` command is in a process group of its own, which the terminal's Ctrl-C misses.
    for (auto& service : services_) {
      if (service->child && !service->plan.run.empty()) service->child->signal(SIGINT);
    }
    console::print_line(console::kWaitingForCommand);
  }
}


}  // namespace lpk::proxy
