#include "proxy/tunnel/dial.hpp"

#include "proxy/tunnel/datagram_flow.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace lpk::tunnel {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

OpenCode open_code_for(const error_code& ec) {
  if (ec == asio::error::connection_refused) return OpenCode::refused;
  if (ec == asio::error::timed_out || ec == asio::error::operation_aborted) {
    return OpenCode::timed_out;
  }
  if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again ||
      ec == asio::error::no_data) {
    return OpenCode::name_not_found;
  }
  if (ec == asio::error::access_denied || ec == asio::error::no_permission) {
    return OpenCode::not_permitted;
  }
  // Out of descriptors or memory here, not a fault of the target: say so, do not blame it.
  if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
      ec == asio::error::no_memory) {
    return OpenCode::internal;
  }
  return OpenCode::unreachable;
}

asio::awaitable<DialResult> dial_tcp(const std::vector<tcp::endpoint>& endpoints,
                                     std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket socket(ex);
  asio::steady_timer deadline(ex, timeout);
  auto outcome = co_await (asio::async_connect(socket, endpoints,
                                               asio::as_tuple(asio::use_awaitable)) ||
                           deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 1) {
    co_return DialResult{OpenCode::timed_out,
                         "no answer within " + std::to_string(timeout.count()) + " ms",
                         std::nullopt};
  }
  // (The losing timer completes with operation_aborted as a tuple: no exception per dial.)
  auto [ec, endpoint] = std::get<0>(outcome);
  if (ec) co_return DialResult{open_code_for(ec), ec.message(), std::nullopt};
  socket.set_option(tcp::no_delay(true), ec);
  co_return DialResult{OpenCode::ok, {}, std::move(socket)};
}

asio::awaitable<DialResult> resolve_and_dial(const Target& target,
                                             std::chrono::milliseconds timeout) {
  if (target.kind == Target::Kind::inbound) {
    co_return DialResult{OpenCode::not_permitted, "inbound streams are not dialed here",
                         std::nullopt};
  }
  if (target.datagram) co_return co_await dial_udp(target, timeout);
  error_code ec;
  auto address = asio::ip::make_address(target.host, ec);
  if (!ec) {
    std::vector<tcp::endpoint> endpoints{tcp::endpoint(address, target.port)};
    co_return co_await dial_tcp(endpoints, timeout);
  }

  auto ex = co_await asio::this_coro::executor;
  const auto started = std::chrono::steady_clock::now();
  tcp::resolver resolver(ex);
  asio::steady_timer deadline(ex, timeout);
  auto outcome = co_await (resolver.async_resolve(target.host, std::to_string(target.port),
                                                  asio::as_tuple(asio::use_awaitable)) ||
                           deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 1) {
    co_return DialResult{OpenCode::timed_out, "name lookup took too long", std::nullopt};
  }
  auto [rec, results] = std::get<0>(outcome);
  if (rec) co_return DialResult{open_code_for(rec), rec.message(), std::nullopt};
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  auto left = timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started);
  co_return co_await dial_tcp(endpoints, std::max(left, std::chrono::milliseconds(1)));
}

}  // namespace lpk::tunnel
