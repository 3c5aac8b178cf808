#include "proxy/forward/udp_listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/tunnel/datagram.hpp"
#include "proxy/tunnel/listen.hpp"
#include "proxy/tunnel/loopback_pair.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;

tunnel::Result<std::shared_ptr<UdpListener>> UdpListener::bind(
    const asio::any_io_executor& executor, const udp::endpoint& endpoint, tunnel::Target target,
    Open open, tunnel::DatagramFlowOptions options) {
  udp::socket socket(executor);
  error_code ec;
  socket.open(endpoint.protocol(), ec);
  if (!ec) socket.bind(endpoint, ec);
  if (!ec) socket.non_blocking(true, ec);
  if (ec) {
    const tcp::endpoint as_tcp(endpoint.address(), endpoint.port());
    return tunnel::Problem{ec, tunnel::describe_bind_error(as_tcp, ec) + " (UDP)"};
  }
  tunnel::enlarge_receive_buffer(socket);
  auto listener = std::make_shared<UdpListener>(std::move(socket), std::move(target),
                                                std::move(open));
  // The flows may outlive the listener by a moment (their endings are asynchronous): they
  // reach it only while it exists.
  std::weak_ptr<UdpListener> weak = listener;
  listener->flows_ = std::make_shared<tunnel::DatagramFlowTable>(
      executor,
      [weak]() -> std::optional<tcp::socket> {
        if (auto self = weak.lock()) return self->open_flow();
        return std::nullopt;
      },
      [weak](const udp::endpoint& to, std::span<const std::byte> d) {
        auto self = weak.lock();
        return self && self->send_to(to, d);
      },
      options);
  return listener;
}

UdpListener::UdpListener(udp::socket socket, tunnel::Target target, Open open)
    : socket_(std::move(socket)), target_(std::move(target)), open_(std::move(open)) {
  error_code ec;
  bound_ = socket_.local_endpoint(ec);
  target_.datagram = true;
}

void UdpListener::start() {
  asio::co_spawn(socket_.get_executor(),
                 [self = shared_from_this()] { return self->receive_loop(); }, asio::detached);
}

void UdpListener::stop() {
  if (std::exchange(stopped_, true)) return;
  error_code ec;
  socket_.close(ec);
  flows_->stop();
}

asio::awaitable<void> UdpListener::receive_loop() {
  std::vector<std::byte> buffer(tunnel::kMaxDatagramSize + 1);
  auto deliver = [&](const udp::endpoint& source, std::size_t n) {
    flows_->deliver(source, std::span(buffer.data(), n));
  };
  while (!stopped_) {
    auto [ec] = co_await socket_.async_wait(udp::socket::wait_read,
                                            asio::as_tuple(asio::use_awaitable));
    if (stopped_ || ec == asio::error::operation_aborted) co_return;
    // ICMP errors for replies we sent (a source that went away) must not end the listener:
    // receive_burst reads past them.
    tunnel::receive_burst(socket_, buffer, deliver);
  }
}

std::optional<tcp::socket> UdpListener::open_flow() {
  auto pair = tunnel::loopback_pair(socket_.get_executor());
  if (!pair) {
    spdlog::warn("UDP {}: cannot open a flow: {}", target_.to_string(), pair.error().message());
    return std::nullopt;
  }
  open_(std::move((*pair)[0]), target_);
  return std::move((*pair)[1]);
}

bool UdpListener::send_to(const udp::endpoint& to, std::span<const std::byte> datagram) {
  if (stopped_) return false;
  error_code ec;
  socket_.send_to(asio::buffer(datagram.data(), datagram.size()), to, 0, ec);
  return !ec;
}

}  // namespace lpk::proxy
