#pragma once
// Loopback listeners that turn each accepted connection into a tunnel stream to the target
// mapped to that (address, port), plus the dialer that lands inbound streams on local ports.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/forward/service_map.hpp"
#include "proxy/forward/udp_listener.hpp"
#include "proxy/tunnel/listen.hpp"
#include "proxy/tunnel/session.hpp"

namespace lpk::proxy {

/// How a local connection reaches a target through a tunnel (TunnelClient::open fits). The
/// seam between the listeners and whichever tunnel carries their streams.
using OpenStream = std::function<void(boost::asio::ip::tcp::socket, tunnel::Target)>;

/// What lpk-proxy tells a person whose service listener cannot be bound.
extern const tunnel::BindHints kListenerHints;

class Forwarder {
 public:
  Forwarder(boost::asio::any_io_executor executor, OpenStream open);

  /// Binds `endpoint` for `target`. Returns the bound endpoint, or the Problem (the socket
  /// error and one line saying what to do). A listener added after start() accepts at once.
  tunnel::Result<boost::asio::ip::tcp::endpoint> listen(
      const boost::asio::ip::tcp::endpoint& endpoint, tunnel::Target target);
  /// Stops listening on `bound` (as listen() returned it); streams already open go on.
  void close(const boost::asio::ip::tcp::endpoint& bound);
  /// listen() for a UDP port: each local source becomes a UDP flow to `target`.
  tunnel::Result<boost::asio::ip::udp::endpoint> listen_udp(
      const boost::asio::ip::udp::endpoint& endpoint, tunnel::Target target);
  /// Stops the UDP listener on `bound` and its flows.
  void close_udp(const boost::asio::ip::udp::endpoint& bound);

  void start();
  void stop();

 private:
  struct Listener {
    boost::asio::ip::tcp::acceptor acceptor;
    tunnel::Target target;
    boost::asio::ip::tcp::endpoint bound;
  };
  // The accept loop holds its listener, so close() can drop it while an accept is pending.
  boost::asio::awaitable<void> accept_loop(std::shared_ptr<Listener> listener);

  boost::asio::any_io_executor executor_;
  OpenStream open_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::vector<std::shared_ptr<UdpListener>> udp_listeners_;
  tunnel::DescriptorShedder shedder_;  // one for all listeners: one reserve, one report
  bool started_ = false;
  bool stopped_ = false;
};

/// Inbound streams connect to 127.0.0.1:<local port for the agent port>. Any other target is
/// refused: the agent must not be able to make the developer machine dial arbitrary hosts.
class LocalDialer final : public tunnel::Dialer {
 public:
  LocalDialer(InboundRoutes routes, std::chrono::milliseconds timeout)
      : routes_(std::move(routes)), timeout_(timeout) {}
  boost::asio::awaitable<tunnel::DialResult> dial(const tunnel::Target& target) override;

 private:
  InboundRoutes routes_;
  std::chrono::milliseconds timeout_;
};

}  // namespace lpk::proxy
