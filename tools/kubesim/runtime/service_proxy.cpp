#include "tools/kubesim/runtime/service_proxy.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "tools/kubesim/coro.hpp"
#include "tools/kubesim/runtime/netns.hpp"

namespace lpk::kubesim {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

struct ServiceProxy::Port {
  std::string ns, service, port_name, cluster_ip;
  int port;
  tcp::acceptor acceptor;
  size_t next = 0;
  Port(asio::io_context& io) : acceptor(io) {}
};

namespace {

// A boolean field of an object written by anyone (a user may write EndpointSlices): fallback
// when it is missing or not a boolean.
bool flag(const json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// The endpoint port named port_name in an EndpointSlice; 0 when the slice has none.
int slice_port(const json& slice, const std::string& port_name) {
  const json& ports = slice.contains("ports") ? slice["ports"] : json();
  if (!ports.is_array()) return 0;
  for (const auto& p : ports) {
    if (p.is_object() && p.value("name", "") == port_name && p.contains("port") &&
        p["port"].is_number_integer()) {
      return p["port"].get<int>();
    }
  }
  return 0;
}

// Where kube-proxy sends a service port's new connections (CategorizeEndpoints): the ready
// endpoints of the service's EndpointSlices that have the port, else, when none is ready,
// those serving while terminating. (ip, port) pairs without duplicates.
std::vector<std::pair<std::string, int>> endpoints_for(Store& store, const std::string& ns,
                                                       const std::string& svc,
                                                       const std::string& port_name) {
  std::set<std::pair<std::string, int>> ready, terminating;
  for (const auto& slice : store.list("endpointslices", ns)) {
    const json& labels =
        slice["metadata"].contains("labels") ? slice["metadata"]["labels"] : json();
    auto name = labels.is_object() ? labels.find("kubernetes.io/service-name") : labels.end();
    if (!labels.is_object() || name == labels.end() || *name != svc) continue;
    int port = slice_port(slice, port_name);
    if (!port) continue;
    const json& eps = slice.contains("endpoints") ? slice["endpoints"] : json();
    for (const auto& e : eps.is_array() ? eps : json::array()) {
      if (!e.is_object() || !e.contains("addresses")) continue;
      const json& addrs = e["addresses"];
      if (!addrs.is_array() || addrs.empty() || !addrs[0].is_string()) continue;
      const json c = e.contains("conditions") ? e["conditions"] : json::object();
      // Unset conditions: ready; serving as ready; not terminating (discovery/v1).
      bool is_ready = flag(c, "ready", true), serving = flag(c, "serving", is_ready);
      if (is_ready) ready.emplace(addrs[0].get<std::string>(), port);
      if (serving && flag(c, "terminating", false))
        terminating.emplace(addrs[0].get<std::string>(), port);
    }
  }
  const auto& chosen = ready.empty() ? terminating : ready;
  return {chosen.begin(), chosen.end()};
}

// The same for a UDP port, as socket endpoints.
std::vector<asio::ip::udp::endpoint> udp_endpoints_for(Store& store, const std::string& ns,
                                                       const std::string& svc,
                                                       const std::string& port_name) {
  std::vector<asio::ip::udp::endpoint> out;
  for (const auto& [ip, port] : endpoints_for(store, ns, svc, port_name)) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(ip, ec);
    if (!ec) out.emplace_back(address, uint16_t(port));
  }
  return out;
}

// default/kubernetes leads to the API server, whatever its endpoints say.
bool is_api(const json& svc) {
  return svc["metadata"].value("namespace", "") == "default" &&
         svc["metadata"].value("name", "") == "kubernetes";
}

awaitable<void> pipe(tcp::socket& from, tcp::socket& to) {
  std::array<char, 16384> buf;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), kTuple);
    if (ec) break;
    auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), kTuple);
    if (wec) break;
  }
  boost::system::error_code ec;
  to.shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace

ServiceProxy::ServiceProxy(asio::io_context& io, Store& store, uint16_t api_port)
    : io_(io), store_(store), api_port_(api_port) {}

ServiceProxy::~ServiceProxy() { stop(); }

void ServiceProxy::start() {
  listener_ = store_.add_listener([this](const WatchEvent& ev) {
    if ((ev.resource != "services" && ev.resource != "endpointslices") || scheduled_ || stopped_) {
      return;
    }
    scheduled_ = true;
    asio::post(io_, [this, alive = alive_] {
      if (!*alive) return;
      scheduled_ = false;
      sync();
    });
  });
  sync();
}

void ServiceProxy::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  if (listener_ >= 0) store_.remove_listener(listener_);
  for (auto& [k, p] : ports_) {
    boost::system::error_code ec;
    p->acceptor.close(ec);
  }
  ports_.clear();
  for (auto& [k, p] : udp_ports_) p->stop();
  udp_ports_.clear();
  for (auto* s : *live_) {
    boost::system::error_code ec;
    s->close(ec);
  }
}

void ServiceProxy::sync() {
  try {
    sync_ports();
  } catch (const std::exception& e) {
    spdlog::warn("kubesim: service proxy: {}", e.what());
  }
}

void ServiceProxy::sync_ports() {
  std::map<std::string, std::shared_ptr<Port>> next;
  std::map<std::string, std::shared_ptr<UdpServicePort>> next_udp;
  for (const auto& svc : store_.list("services")) {
    std::string ip = svc["spec"].value("clusterIP", "");
    if (ip.empty() || ip == "None") continue;
    // kube-dns is served by the DNS server itself on its ClusterIP.
    if (svc["metadata"]["namespace"] == "kube-system" && svc["metadata"]["name"] == "kube-dns") {
      continue;
    }
    for (const auto& sp : svc["spec"].value("ports", json::array())) {
      std::string key = svc["metadata"]["namespace"].get<std::string>() + "/" +
                        svc["metadata"]["name"].get<std::string>() + "/" + ip + ":" +
                        std::to_string(sp.value("port", 0));
      if (sp.value("protocol", "TCP") == "UDP") sync_udp_port(key + "/udp", svc, sp, next_udp);
      if (sp.value("protocol", "TCP") == "TCP") sync_tcp_port(key, svc, sp, next);
    }
  }
  for (auto& [k, p] : ports_) {
    if (!next.count(k)) {
      boost::system::error_code ec;
      p->acceptor.close(ec);  // relayed connections stay, as conntrack keeps them
    }
  }
  ports_ = std::move(next);
  for (auto& [k, p] : udp_ports_) {
    if (!next_udp.count(k)) p->stop();
  }
  udp_ports_ = std::move(next_udp);
}

void ServiceProxy::sync_tcp_port(const std::string& key, const json& svc, const json& sp,
                                 std::map<std::string, std::shared_ptr<Port>>& next) {
  std::string ns = svc["metadata"]["namespace"], name = svc["metadata"]["name"];
  // Without endpoints nothing listens, so new connections are refused (the node answers
  // with a reset) as kube-proxy REJECTs them.
  if (!is_api(svc) && endpoints_for(store_, ns, name, sp.value("name", "")).empty()) return;
  if (auto it = ports_.find(key); it != ports_.end()) {
    it->second->port_name = sp.value("name", "");
    next[key] = it->second;
    return;
  }
  auto p = std::make_shared<Port>(io_);
  p->ns = ns;
  p->service = name;
  p->port_name = sp.value("name", "");
  p->cluster_ip = svc["spec"].value("clusterIP", "");
  p->port = sp.value("port", 0);
  boost::system::error_code ec;
  tcp::endpoint vip(asio::ip::make_address(p->cluster_ip, ec), uint16_t(p->port));
  if (ec) return;
  int fd = socket_in_netns(node_netns(), vip.address().is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM);
  if (fd < 0) return;
  p->acceptor.assign(vip.protocol(), fd, ec);
  p->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  p->acceptor.bind(vip, ec);
  if (!ec) p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    spdlog::warn("kubesim: service {}/{}: cannot listen on {}:{}: {}", ns, name, p->cluster_ip,
                 p->port, ec.message());
    return;
  }
  next[key] = p;
  asio::co_spawn(io_, accept_loop(p), asio::detached);
}

awaitable<void> ServiceProxy::accept_loop(std::shared_ptr<Port> port) {
  while (port->acceptor.is_open()) {
    auto [ec, sock] = co_await port->acceptor.async_accept(kTuple);
    if (ec || stopped_) co_return;
    sock.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(io_, proxy(std::move(sock), port), asio::detached);
  }
}

void ServiceProxy::sync_udp_port(const std::string& key, const json& svc, const json& sp,
                                 std::map<std::string, std::shared_ptr<UdpServicePort>>& next) {
  std::string ns = svc["metadata"]["namespace"], name = svc["metadata"]["name"];
  const std::string port_name = sp.value("name", "");
  auto current = udp_endpoints_for(store_, ns, name, port_name);
  // Without endpoints nothing is bound there: datagrams get an ICMP port unreachable, as
  // kube-proxy REJECTs them.
  if (current.empty()) return;
  auto pick = [this, alive = alive_, ns, name, port_name,
               turn = std::make_shared<size_t>(0)]() -> std::optional<asio::ip::udp::endpoint> {
    if (!*alive) return std::nullopt;
    auto eps = udp_endpoints_for(store_, ns, name, port_name);
    if (eps.empty()) return std::nullopt;
    return eps[(*turn)++ % eps.size()];
  };
  if (auto it = udp_ports_.find(key); it != udp_ports_.end()) {
    it->second->set_pick(pick);  // the port's name may have changed
    it->second->keep_flows_to({current.begin(), current.end()});
    next[key] = it->second;
    return;
  }
  boost::system::error_code ec;
  asio::ip::udp::endpoint vip(asio::ip::make_address(svc["spec"].value("clusterIP", ""), ec),
                              uint16_t(sp.value("port", 0)));
  if (ec) return;
  std::string error;
  auto port = UdpServicePort::open(io_, vip, pick, error);
  if (!port) {
    spdlog::warn("kubesim: service {}/{}: cannot listen on {}:{}/udp: {}", ns, name,
                 vip.address().to_string(), vip.port(), error);
    return;
  }
  port->start();
  next[key] = port;
}

namespace {

// Keeps a relayed connection's sockets in the live set while the relay runs.
class LiveSockets {
 public:
  LiveSockets(std::shared_ptr<std::set<tcp::socket*>> live, tcp::socket* a, tcp::socket* b)
      : live_(std::move(live)), a_(a), b_(b) {
    live_->insert(a_);
    live_->insert(b_);
  }
  ~LiveSockets() {
    live_->erase(a_);
    live_->erase(b_);
  }
  LiveSockets(const LiveSockets&) = delete;
  LiveSockets& operator=(const LiveSockets&) = delete;

 private:
  std::shared_ptr<std::set<tcp::socket*>> live_;
  tcp::socket* a_;
  tcp::socket* b_;
};

}  // namespace

awaitable<void> ServiceProxy::proxy(tcp::socket client, std::shared_ptr<Port> port) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket upstream(ex);
  LiveSockets guard(live_, &client, &upstream);
  tcp::endpoint target;
  if (port->ns == "default" && port->service == "kubernetes") {
    boost::system::error_code oec;
    upstream.open(tcp::v4(), oec);
    if (oec) co_return;
    target = {asio::ip::make_address("127.0.0.1"), api_port_};
  } else {
    auto eps = endpoints_for(store_, port->ns, port->service, port->port_name);
    if (eps.empty()) co_return;  // no endpoints: the connection is refused by closing it
    auto [ip, p] = eps[port->next++ % eps.size()];
    boost::system::error_code aec;
    target = {asio::ip::make_address(ip, aec), uint16_t(p)};
    if (aec) co_return;
    int fd =
        socket_in_netns(node_netns(), target.address().is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM);
    if (fd < 0) co_return;
    upstream.assign(target.protocol(), fd, aec);
    if (aec) co_return;
  }
  auto [ec] = co_await upstream.async_connect(target, kTuple);
  if (ec) co_return;
  upstream.set_option(tcp::no_delay(true), ec);
  co_await (pipe(client, upstream) && pipe(upstream, client));
}

}  // namespace lpk::kubesim
