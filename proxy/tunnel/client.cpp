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
  if (!session_) return;
  // Stopped while waiting to resume (its agent pod was deleted, say): the streams that waited
  // are reset, and the log says so once.
  if (session_->detached()) give_up_on(session_, "the tunnel ends while its link is down");
  session_->stop(GoAwayCode::normal, "lpk-proxy shutting down");
}

asio::awaitable<void> TunnelClient::pause(std::chrono::milliseconds how_long) {
  backoff_.expires_after(how_long);
  co_await backoff_.async_wait(asio::as_tuple(asio::use_awaitable));
}

void TunnelClient::fatal(const std::string& reason) {
  stop();
  if (on_fatal) on_fatal(reason);
}

asio::awaitable<bool> TunnelClient::connect_once(std::string& failure) {
  auto dialed = co_await dialer_.dial();
  if (stopped_) co_return false;
  if (!dialed) {
    if (dialed.error().code == Error::link_misconfigured) {
      fatal("cannot reach the agent at " + dialer_.agent + ": " + dialed.error().message);
    }
    failure = dialed.error().message;
    co_return false;
  }
  auto link = std::move(*dialed);
  const bool want_resume = session_ && session_->detached();
  auto hello = co_await Session::exchange_hellos(*link, options_, session_id_, want_resume);
  if (stopped_) co_return false;
  if (!hello) {
    if (hello.error() == Error::auth_failed || hello.error() == Error::bad_version) {
      // Configuration, not weather: retrying cannot help.
      fatal("the agent at " + dialer_.agent + " refused the tunnel: " + hello.error().message());
    }
    failure = hello.error().message();
    co_return false;
  }
  if (want_resume && hello->peer.resume) {
    session_->attach(std::move(link));
    co_return true;
  }
  if (want_resume) give_up_on(session_, "the agent no longer holds the session (it restarted, "
                                        "or the link was down longer than its --resume-grace)");
  session_ = std::make_shared<Session>(std::move(link), options_, inbound_, hello->local,
                                       hello->peer);
  co_return true;
}

void TunnelClient::give_up_on(const std::shared_ptr<Session>& detached, const std::string& why) {
  auto streams = detached->stats().streams_active;
  history_.lost_streams += streams;
  if (streams > 0) spdlog::warn("tunnel to {}: {}; its {} streams are reset", dialer_.agent, why, streams);
  detached->stop(GoAwayCode::normal, why);
}

void TunnelClient::count_drop(const Session& session, const error_code& why) {
  ++history_.drops;
  history_.last_drop = why.message() + (session.go_away_reason().empty()
                                            ? std::string()
                                            : ", " + session.go_away_reason());
  history_.last_drop_at = std::chrono::system_clock::now();
}

asio::awaitable<void> TunnelClient::connect_loop() {
  auto backoff = 100ms;
  int failures = 0;
  Clock::time_point detached_at{};
  while (!stopped_) {
    // A detached session waits for a new link no longer than the agent keeps its side.
    if (session_ && session_->detached() &&
        Clock::now() - detached_at > options_.resume_grace) {
      give_up_on(session_, "the link was down longer than --resume-grace");
      session_.reset();
    }
    std::string failure;
    const bool ok = co_await connect_once(failure);
    if (stopped_) break;
    if (!ok) {
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
    auto session = session_;
    const auto before = session->stats();
    announce(session, before);
    auto why = co_await session->run();
    if (!after_link(session, why)) co_return;
    if (session->detached()) detached_at = Clock::now();
  }
}

// A new session is announced at once; a resumed one once both sides have compared notes
// (new streams wait until then), saying how it went: the console said the link was lost.
void TunnelClient::announce(const std::shared_ptr<Session>& session, const SessionStats& before) {
  if (session->link_generation() == 0) {
    spdlog::info("tunnel {} up to {}", session->id_text(), dialer_.agent);
    if (on_up) on_up(*session);
    up_signal_.cancel();
    return;
  }
  spdlog::info("tunnel {} to {}: new link, resuming its streams", session->id_text(),
               dialer_.agent);
  session->on_resumed = [weak = weak_from_this(), before] {
    auto self = weak.lock();
    if (!self || !self->session_) return;
    auto now = self->session_->stats();
    auto& history = self->history_;
    ++history.resumes;
    history.resumed_streams += now.streams_resumed - before.streams_resumed;
    history.retransmitted_bytes += now.bytes_retransmitted - before.bytes_retransmitted;
    spdlog::warn("tunnel to {} resumed: {} streams carried on, {} ended while the link was down",
                 self->dialer_.agent, now.streams_resumed - before.streams_resumed,
                 now.streams_ended_while_down - before.streams_ended_while_down);
    self->up_signal_.cancel();
  };
}

// After a link ends: the history for `status`, and whether to go on (false: stop).
bool TunnelClient::after_link(const std::shared_ptr<Session>& session, const error_code& why) {
  if (session->go_away_code() == GoAwayCode::replaced ||
      session->go_away_code() == GoAwayCode::auth_failed) {
    session_.reset();
    fatal("the agent at " + dialer_.agent + " ended the tunnel: " + session->go_away_reason());
    return false;
  }
  if (stopped_) return false;
  count_drop(*session, why);
  if (session->detached()) {
    spdlog::warn("tunnel to {} lost ({}); reconnecting to resume its {} streams", dialer_.agent,
                 history_.last_drop, session->stats().streams_active);
  } else {
    session_.reset();
    spdlog::warn("tunnel to {} lost ({}); reconnecting", dialer_.agent, history_.last_drop);
  }
  return true;
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
