#pragma once
// Loopback listeners that turn each accepted connection into a tunnel stream to the target
// mapped to that (address, port), plus the dialer that lands inbound streams on local ports.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "proxy/service_map.hpp"
#include "proxy/tunnel/session.hpp"
#include "proxy/tunnel_client.hpp"

namespace lpk::proxy {

/// One line saying why `endpoint` could not be bound and what to do about it.
std::string describe_bind_error(const boost::asio::ip::tcp::endpoint& endpoint,
                                const boost::system::error_code& ec);

class Forwarder {
 public:
  Forwarder(boost::asio::any_io_executor executor, TunnelClient& tunnel);

  /// Binds `endpoint` for `target`. Returns the bound endpoint, or the one-line error. A
  /// listener added after start() accepts at once.
  boost::system::result<boost::asio::ip::tcp::endpoint> listen(
      const boost::asio::ip::tcp::endpoint& endpoint, tunnel::Target target,
      std::string& error);
  /// Stops listening on `bound` (as listen() returned it); streams already open go on.
  void close(const boost::asio::ip::tcp::endpoint& bound);

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
  TunnelClient& tunnel_;
  std::vector<std::shared_ptr<Listener>> listeners_;
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
