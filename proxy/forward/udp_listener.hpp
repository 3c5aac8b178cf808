#pragma once
// A UDP port of a service on its loopback address: every local source address:port becomes a
// UDP flow, a datagram stream on the tunnel (tunnel/datagram_flow.hpp), and replies return to
// the source they answer.
//
// Threading: the Forwarder's executor; stop() is idempotent.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <memory>
#include <vector>

#include "proxy/tunnel/datagram_flow.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::proxy {

class UdpListener : public std::enable_shared_from_this<UdpListener> {
 public:
  /// How a new flow's stream reaches the tunnel (Forwarder's OpenStream).
  using Open = std::function<void(boost::asio::ip::tcp::socket, tunnel::Target)>;

  /// Binds `endpoint`; the Problem names the address and what to do when it cannot.
  static tunnel::Result<std::shared_ptr<UdpListener>> bind(
      const boost::asio::any_io_executor& executor, const boost::asio::ip::udp::endpoint& endpoint,
      tunnel::Target target, Open open, tunnel::DatagramFlowOptions options = {});

  /// Use bind(), which also sets up the flow table.
  UdpListener(boost::asio::ip::udp::socket socket, tunnel::Target target, Open open);

  void start();
  void stop();
  boost::asio::ip::udp::endpoint bound() const { return bound_; }
  const tunnel::Target& target() const { return target_; }
  std::size_t flows() const { return flows_->size(); }
  std::uint64_t dropped() const { return flows_->dropped(); }

 private:
  boost::asio::awaitable<void> receive_loop();
  std::optional<boost::asio::ip::tcp::socket> open_flow();
  bool send_to(const boost::asio::ip::udp::endpoint& to, std::span<const std::byte> datagram);

  boost::asio::ip::udp::socket socket_;
  boost::asio::ip::udp::endpoint bound_;
  tunnel::Target target_;
  Open open_;
  std::shared_ptr<tunnel::DatagramFlowTable> flows_;
  bool stopped_ = false;
};

}  // namespace lpk::proxy
