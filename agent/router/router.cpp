#include "agent/router/router.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <algorithm>
#include <chrono>
#include <utility>

#include "agent/coro.hpp"
#include "agent/router/detail/admin.hpp"
#include "agent/router/detail/connection.hpp"
#include "agent/router/detail/shared.hpp"
#include "proxy/tunnel/listen.hpp"

namespace lpk::router {

namespace {

namespace asio = boost::asio;
using agent::kTuple;
using asio::ip::tcp;

/// Dual stack on `address` (`::`), or IPv4's every address on a kernel without IPv6, as the
/// agent's served ports are opened (agent/agent.cpp).
tunnel::Result<tcp::acceptor> open_port(const asio::any_io_executor& executor,
                                        const asio::ip::address& address, std::uint16_t port,
                                        const tunnel::BindHints& hints) {
  auto acceptor = tunnel::open_listener(executor, {address, port}, hints);
  if (!acceptor && acceptor.error().code == asio::error::address_family_not_supported &&
      address == asio::ip::address_v6::any()) {
    acceptor = tunnel::open_listener(executor, {asio::ip::address_v4::any(), port}, hints);
  }
  return acceptor;
}

asio::awaitable<void> accept_clients(std::shared_ptr<detail::Shared> shared,
                                     tcp::acceptor& acceptor, PortSpec port) {
  tunnel::DescriptorShedder shedder;
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (tunnel::out_of_descriptors(ec)) {
      shedder.shed(acceptor, "router port " + std::to_string(port.port));
      continue;
    }
    if (ec) continue;
    auto connection = std::make_shared<detail::Connection>(shared, std::move(socket), port);
    asio::co_spawn(
        acceptor.get_executor(), [connection]() { return connection->run(); }, asio::detached);
  }
}

asio::awaitable<void> accept_admin(std::shared_ptr<detail::Shared> shared,
                                   tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), detail::serve_admin(shared, std::move(socket)),
                   asio::detached);
  }
}

/// Closes the HTTP/1 connections that have waited longer than the idle timeout for their next
/// request. One timer for every connection: the hot path only notes when it starts waiting.
/// A connection lives at most the timeout plus a quarter of it (or a minute).
asio::awaitable<void> sweep_idle(std::shared_ptr<detail::Shared> shared) {
  using namespace std::chrono_literals;
  const auto timeout = shared->options.idle_timeout;
  const auto period = std::clamp<std::chrono::milliseconds>(timeout / 4, 100ms, 60s);
  for (;;) {
    shared->idle_sweep->expires_after(period);
    co_await shared->idle_sweep->async_wait(kTuple);
    if (shared->stopped) co_return;
    const auto cutoff = std::chrono::steady_clock::now() - timeout;
    auto live = shared->live;  // stop() ends a connection later, on its own coroutine
    for (auto* c : live) {
      if (c->idle_since_before(cutoff)) c->stop();
    }
  }
}

}  // namespace

Router::Router(asio::any_io_executor executor, RouterOptions options)
    : executor_(std::move(executor)),
      shared_(std::make_shared<detail::Shared>(std::move(options))) {}

Router::~Router() {
  shared_->on_drained = nullptr;  // what it calls goes with its owner
  stop();
}

tunnel::Result<void> Router::bind() {
  const auto& o = shared_->options;
  for (const auto& p : o.ports) {
    auto acceptor = open_port(executor_, o.address, p.port,
                              {.in_use = "stop the process holding it or choose another --port",
                               .not_here = "check the address"});
    if (!acceptor) return acceptor.error();
    acceptors_.push_back(std::make_unique<tcp::acceptor>(std::move(*acceptor)));
  }
  auto admin =
      open_port(executor_, o.address, o.admin_port,
                {.in_use = "choose another --admin-port", .not_here = "check the address"});
  if (!admin) return admin.error();
  admin_ = std::make_unique<tcp::acceptor>(std::move(*admin));
  return {};
}

std::vector<tcp::endpoint> Router::port_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& a : acceptors_) out.push_back(a->local_endpoint());
  return out;
}

tcp::endpoint Router::admin_endpoint() const { return admin_->local_endpoint(); }

void Router::start() {
  for (std::size_t i = 0; i < acceptors_.size(); ++i) {
    asio::co_spawn(executor_, accept_clients(shared_, *acceptors_[i], shared_->options.ports[i]),
                   asio::detached);
  }
  if (admin_) asio::co_spawn(executor_, accept_admin(shared_, *admin_), asio::detached);
  if (shared_->options.idle_timeout.count() > 0 && !shared_->idle_sweep) {
    shared_->idle_sweep.emplace(executor_);
    asio::co_spawn(executor_, sweep_idle(shared_), asio::detached);
  }
}

void Router::update(RouteSet routes) {
  auto before = shared_->table.describe(shared_->options.service);
  shared_->table.update(std::move(routes));
  auto after = shared_->table.describe(shared_->options.service);
  // Request counts aside, did anything change? Then say what the routes are now.
  for (auto* doc : {&before, &after}) {
    (*doc)["original"].erase("requests");
    for (auto& r : (*doc)["routes"]) r.erase("requests");
  }
  if (before != after) spdlog::info("router: routes now {}", after.dump());
}

void Router::drain(std::function<void()> on_drained) {
  shared_->draining = true;
  boost::system::error_code ec;
  for (auto& a : acceptors_) a->close(ec);
  if (admin_) admin_->close(ec);
  shared_->on_drained = std::move(on_drained);
  auto live = shared_->live;  // a connection's drain() may end it
  for (auto* c : live) c->drain();
  if (shared_->live.empty() && shared_->on_drained) std::exchange(shared_->on_drained, nullptr)();
}

void Router::stop() {
  if (shared_->stopped) return;
  shared_->stopped = shared_->draining = true;
  boost::system::error_code ec;
  for (auto& a : acceptors_) a->close(ec);
  if (admin_) admin_->close(ec);
  if (shared_->idle_sweep) shared_->idle_sweep->cancel();
  // stop() ends each connection's coroutine, which removes it from `live`.
  auto live = shared_->live;
  for (auto* c : live) c->stop();
}

}  // namespace lpk::router
