#pragma once
// The proxy's end of the link to one agent: dials it (plain TCP, or any link a LinkDialer makes,
// such as a pod port-forward), runs the session, and reconnects with backoff when the link
// drops. Local connections that arrive while the tunnel is down wait for it (bounded) instead of
// failing at once.
//
// Threading: one executor; stop() is idempotent.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>

#include "proxy/tunnel/error.hpp"
#include "proxy/tunnel/session.hpp"

namespace lpk::tunnel {

/// Makes a fresh link to the agent on every call (reconnects call it again). A Problem whose
/// code is Error::link_misconfigured means retrying cannot help: the client stops.
struct LinkDialer {
  std::string agent;  // for messages: "127.0.0.1:4590", "pod demo/api-1 port 4590"
  std::function<boost::asio::awaitable<Result<std::unique_ptr<Link>>>()> dial;
};

/// Dials `agent` over TCP (5 s per attempt): the link of `lpk-proxy run --agent HOST:PORT`.
LinkDialer tcp_link_dialer(Target agent);

/// What happened to the links of one TunnelClient, for `lpk-proxy status`.
struct LinkHistory {
  std::uint64_t drops = 0;   // links that were up and failed without stop()
  std::string last_drop;     // why the last one ended, as the log says it
  std::chrono::system_clock::time_point last_drop_at{};
  std::uint64_t resumes = 0;          // new links that carried the open streams on
  std::uint64_t resumed_streams = 0;  // streams carried across drops
  std::uint64_t lost_streams = 0;     // streams reset because a drop could not be resumed
  std::uint64_t retransmitted_bytes = 0;
};

/// Lifetime: owned by a std::shared_ptr (std::make_shared); its coroutines hold it, so an owner
/// may drop it after stop() while a connect attempt or a waiting connection is still pending.
class TunnelClient : public std::enable_shared_from_this<TunnelClient> {
 public:
  TunnelClient(boost::asio::any_io_executor executor, Target agent, SessionOptions options,
               std::shared_ptr<Dialer> inbound);
  TunnelClient(boost::asio::any_io_executor executor, LinkDialer dialer, SessionOptions options,
               std::shared_ptr<Dialer> inbound);

  /// Called on every successful handshake.
  std::function<void(Session&)> on_up;
  /// Called once when reconnecting makes no sense (another proxy took the agent over); the
  /// client has stopped by then.
  std::function<void(const std::string&)> on_fatal;

  void start();
  void stop();

  /// Carries `local` to `target` through the tunnel, waiting up to `wait_for_tunnel` for the
  /// tunnel to come up; the connection is closed if it does not.
  void open(boost::asio::ip::tcp::socket local, Target target);

  std::shared_ptr<Session> session() const { return session_; }
  const SessionId& session_id() const { return session_id_; }
  /// The first 8 hex digits of the session id: names the log directory.
  std::string session_id_text() const;

  std::chrono::milliseconds wait_for_tunnel{10'000};

  const LinkHistory& history() const { return history_; }

 private:
  boost::asio::awaitable<void> connect_loop();
  boost::asio::awaitable<void> open_when_up(boost::asio::ip::tcp::socket local,
                                            Target target);
  boost::asio::awaitable<void> pause(std::chrono::milliseconds how_long);

  /// One dial and hello. Resumes the detached session when the agent still holds it (true);
  /// otherwise sets session_ to a new session on the link. False with `failure` set when
  /// either step fails.
  boost::asio::awaitable<bool> connect_once(std::string& failure);
  void count_drop(const Session& session, const boost::system::error_code& why);
  void announce(const std::shared_ptr<Session>& session, const SessionStats& before);
  bool after_link(const std::shared_ptr<Session>& session, const boost::system::error_code& why);
  void give_up_on(const std::shared_ptr<Session>& detached, const std::string& why);
  void fatal(const std::string& reason);

  boost::asio::any_io_executor executor_;
  LinkDialer dialer_;
  SessionOptions options_;
  std::shared_ptr<Dialer> inbound_;
  SessionId session_id_;
  std::shared_ptr<Session> session_;
  boost::asio::steady_timer up_signal_;  // cancelled whenever a session comes up
  boost::asio::steady_timer backoff_;
  bool stopped_ = false;
  LinkHistory history_;
};

}  // namespace lpk::tunnel
