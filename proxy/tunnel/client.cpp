#include "proxy/tunnel/client.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/tunnel/dial.hpp"
#include "proxy/tunnel/error.hpp"
#include "proxy/tunnel/handshake.hpp"

namespace lpk::tunnel {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

LinkDialer tcp_link_dialer(Target agent) {
  auto name = agent.to_string();
  return {name, [agent = std::move(agent)]() -> asio::awaitable<Result<std::unique_ptr<Link>>> {
            auto dialed = co_await resolve_and_dial(agent, 5s);
            if (dialed.code != OpenCode::ok) {
              co_return Problem{make_error_code(Error::peer_went_away),
                                describe(dialed.code, dialed.reason)};
            }
            co_return std::make_unique<TcpLink>(std::move(*dialed.socket));
          }};
}

TunnelClient::TunnelClient(asio::any_io_executor executor, Target agent,
                           SessionOptions options,
                           std::shared_ptr<Dialer> inbound)
    : TunnelClient(std::move(executor), tcp_link_dialer(std::move(agent)), std::move(options),
                   std::move(inbound)) {}

TunnelClient::TunnelClient(asio::any_io_executor executor, LinkDialer dialer,
                           SessionOptions options,
                           std::shared_ptr<Dialer> inbound)
    : executor_(std::move(executor)),
      dialer_(std::move(dialer)),
      options_(std::move(options)),
      inbound_(std::move(inbound)),
      session_id_(random_session_id()),
      up_signal_(executor_, Clock::time_point::max()),
      backoff_(executor_) {
  options_.role = Role::proxy;
}

std::string TunnelClient::session_id_text() const {
  return to_hex(session_id_).substr(0, 8);
}

void TunnelClient::start() {
  asio::co_spawn(executor_, [self = shared_from_this()] { return self->connect_loop(); },
                 asio::detached);
}

void TunnelClient::stop() {
  if (stopped_) return;
  stopped_ = true;
  backoff_.cancel();
  up_signal_.cancel();
  if (session_) session_->stop(GoAwayCode::normal, "lpk-proxy shutting down");
}

asio::awaitable<void> TunnelClient::pause(std::chrono::milliseconds how_long) {
  backoff_.expires_after(how_long);
  co_await backoff_.async_wait(asio::as_tuple(asio::use_awaitable));
}

void TunnelClient::fatal(const std::string& reason) {
  stop();
  if (on_fatal) on_fatal(reason);
}

// One dial and handshake; null with `failure` set when either fails (or fatal() was called).
asio::awaitable<std::shared_ptr<Session>> TunnelClient::connect_once(
    std::string& failure) {
  auto dialed = co_await dialer_.dial();
  if (stopped_) co_return nullptr;
  if (!dialed) {
    if (dialed.error().code == Error::link_misconfigured) {
      fatal("cannot reach the agent at " + dialer_.agent + ": " + dialed.error().message);
    }
    failure = dialed.error().message;
    co_return nullptr;
  }
  auto established =
      co_await Session::establish(std::move(*dialed), options_, inbound_, session_id_);
  if (established) co_return *established;
  if (established.error() == Error::auth_failed ||
      established.error() == Error::bad_version) {
    // Configuration, not weather: retrying cannot help.
    fatal("the agent at " + dialer_.agent + " refused the tunnel: " +
          established.error().message());
  }
  failure = established.error().message();
  co_return nullptr;
}

asio::awaitable<void> TunnelClient::connect_loop() {
  auto backoff = 100ms;
  int failures = 0;
  while (!stopped_) {
    std::string failure;
    auto session = co_await connect_once(failure);
    if (stopped_) break;
    if (!session) {
      // Say it the first time and then now and again, not on every retry.
      if (failures++ % 20 == 0) {
        spdlog::warn("cannot reach the agent at {}: {}; retrying", dialer_.agent, failure);
      }
      co_await pause(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5s));
      continue;
    }
    failures = 0;
    backoff = 100ms;
    session_ = session;
    spdlog::info("tunnel {} up to {}", session->id_text(), dialer_.agent);
    if (on_up) on_up(*session);
    up_signal_.cancel();
    auto why = co_await session->run();
    session_.reset();
    if (session->go_away_code() == GoAwayCode::replaced ||
        session->go_away_code() == GoAwayCode::auth_failed) {
      fatal("the agent at " + dialer_.agent + " ended the tunnel: " + session->go_away_reason());
      co_return;
    }
    if (stopped_) break;
    ++history_.drops;
    history_.last_drop = why.message() + (session->go_away_reason().empty()
                                              ? std::string()
                                              : ", " + session->go_away_reason());
    history_.last_drop_at = std::chrono::system_clock::now();
    spdlog::warn("tunnel to {} lost ({}); reconnecting", dialer_.agent, history_.last_drop);
  }
}

void TunnelClient::open(tcp::socket local, Target target) {
  if (session_ && session_->accepting_streams()) {
    session_->open_stream(std::move(local), std::move(target));
    return;
  }
  asio::co_spawn(executor_,
                 [self = shared_from_this(), local = std::move(local),
                  target = std::move(target)]() mutable {
                   return self->open_when_up(std::move(local), std::move(target));
                 },
                 asio::detached);
}

asio::awaitable<void> TunnelClient::open_when_up(tcp::socket local, Target target) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer deadline(executor_, wait_for_tunnel);
  while (!stopped_ && !(session_ && session_->accepting_streams())) {
    if (deadline.expiry() <= Clock::now()) break;
    co_await (up_signal_.async_wait(asio::as_tuple(asio::use_awaitable)) ||
              deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
  }
  if (session_ && session_->accepting_streams()) {
    session_->open_stream(std::move(local), std::move(target));
    co_return;
  }
  spdlog::warn("connection for {} closed: no tunnel to the agent", target.to_string());
  error_code ec;
  local.set_option(asio::socket_base::linger(true, 0), ec);
  local.close(ec);
}

}  // namespace lpk::tunnel
