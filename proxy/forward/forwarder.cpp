#include "proxy/forward/forwarder.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/tunnel/dial.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

const tunnel::BindHints kListenerHints{
    .in_use = "map the service to another port",
    .privileged = "run 'sudo setcap cap_net_bind_service=+ep $(command -v lpk-proxy)' or map the "
                  "service to a port of 1024 or more",
    .not_here = "use one in 127.0.0.0/8"};

Forwarder::Forwarder(asio::any_io_executor executor, OpenStream open)
    : executor_(std::move(executor)), open_(std::move(open)) {}

tunnel::Result<tcp::endpoint> Forwarder::listen(const tcp::endpoint& endpoint,
                                                tunnel::Target target) {
  auto acceptor = tunnel::open_listener(executor_, endpoint, kListenerHints);
  if (!acceptor) return acceptor.error();
  error_code ec;
  auto bound = acceptor->local_endpoint(ec);
  auto listener = std::make_shared<Listener>(Listener{std::move(*acceptor), std::move(target), bound});
  if (started_ && !stopped_) asio::co_spawn(executor_, accept_loop(listener), asio::detached);
  listeners_.push_back(std::move(listener));
  return bound;
}

void Forwarder::close(const tcp::endpoint& bound) {
  std::erase_if(listeners_, [&](const std::shared_ptr<Listener>& l) {
    if (l->bound != bound) return false;
    error_code ec;
    l->acceptor.close(ec);
    return true;
  });
}

tunnel::Result<asio::ip::udp::endpoint> Forwarder::listen_udp(
    const asio::ip::udp::endpoint& endpoint, tunnel::Target target) {
  auto listener = UdpListener::bind(executor_, endpoint, std::move(target), open_);
  if (!listener) return listener.error();
  if (started_ && !stopped_) (*listener)->start();
  udp_listeners_.push_back(*listener);
  return (*listener)->bound();
}

void Forwarder::close_udp(const asio::ip::udp::endpoint& bound) {
  std::erase_if(udp_listeners_, [&](const std::shared_ptr<UdpListener>& l) {
    if (l->bound() != bound) return false;
    l->stop();
    return true;
  });
}

void Forwarder::start() {
  started_ = true;
  for (auto& l : listeners_) asio::co_spawn(executor_, accept_loop(l), asio::detached);
  for (auto& l : udp_listeners_) l->start();
}

void Forwarder::stop() {
  stopped_ = true;
  error_code ec;
  for (auto& l : listeners_) l->acceptor.close(ec);
  for (auto& l : udp_listeners_) l->stop();
}

asio::awaitable<void> Forwarder::accept_loop(std::shared_ptr<Listener> held) {
  auto& listener = *held;
  while (!stopped_ && listener.acceptor.is_open()) {
    auto [ec, socket] =
        co_await listener.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || stopped_ || !listener.acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors: refuse what waits in the backlog (see DescriptorShedder) and back
      // off; other errors: say so. Either way, keep serving the other listeners.
      if (tunnel::out_of_descriptors(ec)) {
        shedder_.shed(listener.acceptor, listener.target.to_string());
      } else {
        spdlog::warn("accept for {} failed: {}", listener.target.to_string(), ec.message());
      }
      asio::steady_timer pause(executor_, std::chrono::milliseconds(50));  // do not spin
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    open_(std::move(socket), listener.target);
  }
}

asio::awaitable<tunnel::DialResult> LocalDialer::dial(const tunnel::Target& target) {
  if (target.kind != tunnel::Target::Kind::inbound) {
    co_return tunnel::DialResult{tunnel::OpenCode::not_permitted,
                                 "lpk-proxy accepts only inbound streams", std::nullopt};
  }
  auto port = routes_.local_port_for(target.port);
  if (!port) {
    co_return tunnel::DialResult{
        tunnel::OpenCode::refused,
        "no --local-port for agent port " + std::to_string(target.port), std::nullopt};
  }
  std::vector<tcp::endpoint> endpoints{tcp::endpoint(asio::ip::make_address("127.0.0.1"), *port)};
  co_return co_await tunnel::dial_tcp(endpoints, timeout_);
}

}  // namespace lpk::proxy
