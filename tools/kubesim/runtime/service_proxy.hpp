#pragma once
// ClusterIP networking, the way kube-proxy's userspace mode did it: for every TCP port of
// every Service with a ClusterIP, a listener bound to that ClusterIP inside the node
// namespace (the whole service range is local there), relaying each connection to an
// endpoint; every UDP port a socket there whose flows are pinned to one endpoint each
// (udp_service_port.hpp). Endpoints come from the Service's EndpointSlices as kube-proxy
// reads them: the ready ones that have the port, else those serving while terminating. Each
// new connection reads them afresh, so a changed selector steers new connections at once,
// while relayed connections keep flowing (as conntrack keeps them). A TCP port without
// endpoints has no listener, so connections to it are refused, as kube-proxy REJECTs them; a
// UDP port without endpoints is not bound, so datagrams get ICMP port unreachable.
// Pods reach ClusterIPs through their default route to the node; the host has no route to
// them.

#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "tools/kubesim/runtime/udp_service_port.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

class ServiceProxy {
 public:
  /// api_port: where default/kubernetes leads (the API server on the host's 127.0.0.1).
  ServiceProxy(boost::asio::io_context& io, Store& store, uint16_t api_port);
  ~ServiceProxy();
  void start();
  void stop();

 private:
  struct Port;
  void sync();
  void sync_ports();
  /// Keeps (or opens) the TCP port `key` of a Service into `next` while it has endpoints.
  void sync_tcp_port(const std::string& key, const json& svc, const json& service_port,
                     std::map<std::string, std::shared_ptr<Port>>& next);
  /// Keeps (or opens) the UDP port `key` of a Service into `next` while it has endpoints;
  /// flows to endpoints that left the Service are forgotten.
  void sync_udp_port(const std::string& key, const json& svc, const json& service_port,
                     std::map<std::string, std::shared_ptr<UdpServicePort>>& next);
  boost::asio::awaitable<void> accept_loop(std::shared_ptr<Port> port);
  boost::asio::awaitable<void> proxy(boost::asio::ip::tcp::socket client,
                                     std::shared_ptr<Port> port);

  boost::asio::io_context& io_;
  Store& store_;
  uint16_t api_port_;
  int listener_ = -1;
  bool scheduled_ = false;
  bool stopped_ = false;
  std::map<std::string, std::shared_ptr<Port>> ports_;                // "ns/svc/ip:port"
  std::map<std::string, std::shared_ptr<UdpServicePort>> udp_ports_;  // "ns/svc/ip:port/udp"
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // Sockets of the connections being relayed, closed by stop().
  std::shared_ptr<std::set<boost::asio::ip::tcp::socket*>> live_ =
      std::make_shared<std::set<boost::asio::ip::tcp::socket*>>();
};

}  // namespace lpk::kubesim
