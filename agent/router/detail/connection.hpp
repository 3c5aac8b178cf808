#pragma once
// One client connection of the router: sniffs what it speaks, then relays it opaque (to an
// original pod), routes each request of its HTTP/2 connection (H2Mux, h2_mux.hpp), or routes
// each HTTP/1 request over one upstream connection per backend.
//
// Lifetime: run()'s coroutine holds a shared_ptr to the connection; stop() (from Router::stop)
// closes every socket, which ends the coroutine. Peer errors end this connection only.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "agent/router/detail/byte_buffer.hpp"
#include "agent/router/detail/shared.hpp"
#include "agent/router/http1.hpp"

namespace lpk::router::detail {

/// A head's limit plus room for the body bytes that arrive with it: what a buffer grows to.
inline constexpr std::size_t kBufferSize = kMaxHeadSize + 16 * 1024;
/// What a buffer starts with: most request and response heads fit.
inline constexpr std::size_t kInitialBuffer = 8 * 1024;
/// Backends one client connection keeps a connection to; past this the oldest is closed.
inline constexpr std::size_t kMaxUpstreams = 8;

class H2Mux;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Shared> shared, boost::asio::ip::tcp::socket client, PortSpec port);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  boost::asio::awaitable<void> run();
  /// Closes every socket.
  void stop();
  /// stop() now if the connection waits for the next HTTP/1 request; else it closes after the
  /// current exchange (serve_http1 checks Shared::draining). HTTP/2: H2Mux::drain().
  void drain();
  /// Whether the connection has waited for its next HTTP/1 request since before `t`.
  bool idle_since_before(std::chrono::steady_clock::time_point t) const {
    return idle_ && idle_since_ < t;
  }

 private:
  struct Upstream {
    Upstream(boost::asio::ip::tcp::endpoint k, boost::asio::ip::tcp::socket s)
        : key(k), socket(std::move(s)) {}
    boost::asio::ip::tcp::endpoint key;  // the backend; unspecified for the fallback
    boost::asio::ip::tcp::socket socket;
    ByteBuffer buffer{kInitialBuffer, kBufferSize};
    bool reused = false;  // has carried an exchange: the server may have closed it since
  };
  /// How an exchange ended: the client connection goes on or closes; or no response came
  /// (bad_gateway), not even a byte from an upstream that was kept alive (stale: worth a retry).
  enum class Outcome { keep, close, bad_gateway, stale };

  boost::asio::awaitable<Protocol> sniff();
  boost::asio::awaitable<void> serve_opaque(std::optional<boost::asio::ip::tcp::endpoint> to);
  /// After the preface: HTTP/2 (a SETTINGS frame) goes to an H2Mux, anything else opaque to
  /// an original pod.
  boost::asio::awaitable<void> serve_h2();
  boost::asio::awaitable<void> serve_http1();
  boost::asio::awaitable<ParseStatus> read_request_head();
  boost::asio::awaitable<bool> exchange();
  boost::asio::awaitable<Outcome> send_request(Upstream& up, bool& body_done);
  boost::asio::awaitable<Outcome> send_body(Upstream& up, bool& body_done);
  /// Relays 1xx responses and the final one; `pending_head` bytes of `in_` (the request head)
  /// are consumed once a response head has come.
  boost::asio::awaitable<Outcome> relay_response(Upstream& up, bool head_request,
                                                 bool connect_request, std::size_t pending_head);
  boost::asio::awaitable<Outcome> relay_final(Upstream& up);
  /// The upstream for `to` (nullopt: the port's fallback), dialled if need be; nullptr when it
  /// cannot be reached, with `why` said.
  boost::asio::awaitable<Upstream*> upstream_for(std::optional<boost::asio::ip::tcp::endpoint> to,
                                                 std::string& why);
  boost::asio::awaitable<void> reply(std::string_view status, std::string_view body, bool close);

  std::shared_ptr<Shared> shared_;
  boost::asio::ip::tcp::socket client_;
  PortSpec port_;
  ByteBuffer in_{kInitialBuffer, kBufferSize};
  bool client_eof_ = false;  // the client half-closed while the router sniffed
  bool idle_ = false;        // waiting for the first byte of the next HTTP/1 request
  std::chrono::steady_clock::time_point idle_since_;  // when idle_ last turned true
  RequestHead request_;
  ResponseHead response_;
  BodyFramer framer_;  // the request body's
  BodyFramer response_framer_;
  std::vector<std::unique_ptr<Upstream>> upstreams_;
  std::shared_ptr<H2Mux> h2_;
  std::uint64_t requests_ = 0;
  std::uint64_t to_upstream_ = 0;  // bytes sent on, for the summary line
  std::uint64_t to_client_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace lpk::router::detail
