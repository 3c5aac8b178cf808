#include "agent/router/detail/connection.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <utility>

#include "agent/coro.hpp"
#include "agent/router/detail/dial_backend.hpp"
#include "agent/router/detail/h2_mux.hpp"
#include "agent/router/h2_frame.hpp"

namespace lpk::router::detail {

namespace {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
using agent::kTuple;
using asio::ip::tcp;
using boost::system::error_code;

/// Reads what is there into `buffer` (which must not be full).
asio::awaitable<error_code> read_more(tcp::socket& socket, ByteBuffer& buffer) {
  auto [ec, n] = co_await socket.async_read_some(buffer.prepare(), kTuple);
  buffer.commit(n);
  co_return ec;
}

/// Writes all of `bytes`, adding what went to `moved`.
asio::awaitable<error_code> write_all(tcp::socket& socket, std::string_view bytes,
                                      std::uint64_t& moved) {
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(bytes), kTuple);
  moved += n;
  co_return ec;
}

/// One direction of an opaque relay: what `buffer` holds, then everything `from` sends, to
/// `to`; `from`'s EOF becomes `to`'s half-close. An error ends both directions.
asio::awaitable<void> pump(tcp::socket& from, ByteBuffer& buffer, tcp::socket& to, bool from_eof,
                           std::uint64_t& moved) {
  error_code ec;
  for (;;) {
    if (!buffer.empty()) {
      if ((ec = co_await write_all(to, buffer.data(), moved))) break;
      buffer.consume(buffer.data().size());
    }
    if (from_eof) {
      to.shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    ec = co_await read_more(from, buffer);
    if (ec == asio::error::eof) {
      from_eof = true;
    } else if (ec) {
      break;
    }
  }
  // A reset or a write to a closed peer: the other direction would wait forever.
  from.close(ec);
  to.close(ec);
}

enum class BodyEnd { done, eof, malformed, read_failed, write_failed };

/// Streams a body framed by `framer` from `from` to `to`; `buffer` holds its first bytes after
/// `prefix` bytes that go out first (the head). Bodies go through `buffer` piece by piece.
asio::awaitable<BodyEnd> stream_body(tcp::socket& from, ByteBuffer& buffer, std::size_t prefix,
                                     tcp::socket& to, BodyFramer& framer, std::uint64_t& moved) {
  for (;;) {
    std::size_t used = 0;
    auto result = framer.take(buffer.data().substr(prefix), used);
    if (result == BodyFramer::Result::malformed) co_return BodyEnd::malformed;
    if (prefix + used > 0) {
      if (co_await write_all(to, buffer.data().substr(0, prefix + used), moved)) {
        co_return BodyEnd::write_failed;
      }
      buffer.consume(prefix + used);
      prefix = 0;
    }
    if (result == BodyFramer::Result::done) co_return BodyEnd::done;
    auto ec = co_await read_more(from, buffer);
    if (ec == asio::error::eof && framer.kind() == BodyKind::until_close) co_return BodyEnd::eof;
    if (ec) co_return BodyEnd::read_failed;
  }
}

/// Waits until cancelled (by the other side of an `||`).
asio::awaitable<void> park() {
  asio::steady_timer forever(co_await asio::this_coro::executor,
                             asio::steady_timer::time_point::max());
  co_await forever.async_wait(kTuple);
}

}  // namespace

Connection::Connection(std::shared_ptr<Shared> shared, tcp::socket client, PortSpec port)
    : shared_(std::move(shared)), client_(std::move(client)), port_(std::move(port)) {
  shared_->live.insert(this);
  error_code ec;
  client_.set_option(tcp::no_delay(true), ec);
}

Connection::~Connection() {
  shared_->live.erase(this);
  if (shared_->draining && shared_->live.empty() && shared_->on_drained) {
    std::exchange(shared_->on_drained, nullptr)();
  }
}

void Connection::drain() {
  if (h2_) h2_->drain();
  if (idle_) stop();
}

void Connection::stop() {
  error_code ec;
  client_.close(ec);
  if (h2_) h2_->stop();
  for (auto& u : upstreams_) u->socket.close(ec);
}

asio::awaitable<void> Connection::run() {
  auto protocol = co_await sniff();
  if (protocol == Protocol::http1) {
    co_await serve_http1();
  } else if (protocol == Protocol::h2) {
    co_await serve_h2();
  } else if (protocol == Protocol::other) {
    shared_->opaque_connections++;
    co_await serve_opaque(shared_->table.next_original(port_.port));
  }
  if (h2_) {
    requests_ = h2_->requests();
    to_upstream_ = h2_->bytes_up();
    to_client_ = h2_->bytes_down();
  }
  auto lasted = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_);
  spdlog::debug("router: {} connection on port {} ends: {} requests, {} bytes up, {} down, {} ms",
                protocol == Protocol::http1 ? "HTTP/1"
                : protocol == Protocol::h2  ? "HTTP/2"
                                            : "opaque",
                port_.port, requests_, to_upstream_, to_client_, lasted.count());
  stop();
}

asio::awaitable<Protocol> Connection::sniff() {
  asio::steady_timer wait(client_.get_executor(), shared_->options.sniff_wait);
  for (;;) {
    auto protocol = sniff_protocol(in_.data());
    if (protocol != Protocol::need_more) co_return protocol;
    if (in_.full()) co_return Protocol::other;
    auto outcome = co_await (read_more(client_, in_) || wait.async_wait(kTuple));
    if (outcome.index() == 1) co_return Protocol::other;  // a server-speaks-first protocol
    auto ec = std::get<0>(outcome);
    if (ec == asio::error::eof) {
      client_eof_ = true;
      co_return Protocol::other;
    }
    if (ec) co_return Protocol::need_more;  // gone
  }
}

asio::awaitable<void> Connection::serve_opaque(std::optional<tcp::endpoint> to) {
  std::string why;
  auto* up = (to || !port_.fallback_host.empty()) ? co_await upstream_for(to, why) : nullptr;
  if (!up) {
    spdlog::debug("router: opaque connection on port {} closed: {}", port_.port,
                  why.empty() ? "no original pod known" : why);
    co_return;
  }
  co_await (pump(client_, in_, up->socket, client_eof_, to_upstream_) &&
            pump(up->socket, up->buffer, client_, false, to_client_));
}

asio::awaitable<void> Connection::serve_h2() {
  shared_->h2_connections++;
  // RFC 9113 3.4: a SETTINGS frame follows the preface; its header decides.
  while (in_.data().size() < kH2Preface.size() + h2::kFrameHeaderSize && !client_eof_) {
    auto ec = co_await read_more(client_, in_);
    if (ec == asio::error::eof) {
      client_eof_ = true;
    } else if (ec) {
      co_return;
    }
  }
  auto first = in_.data().substr(kH2Preface.size());
  const bool settings = first.size() >= h2::kFrameHeaderSize && first[3] == h2::kSettings &&
                        (first[4] & h2::kAck) == 0 && h2::read_be(first, 5, 4) == 0 &&
                        h2::read_be(first, 0, 3) % 6 == 0 &&
                        h2::read_be(first, 0, 3) <= h2::kDefaultMaxFrame;
  if (!settings || client_eof_) {
    // Not HTTP/2 after all: to an original, unchanged, which answers it as it does.
    co_return co_await serve_opaque(shared_->table.next_original(port_.port));
  }
  h2_ = std::make_shared<H2Mux>(shared_, std::move(client_), in_.data(), port_);
  co_await h2_->run();
}

asio::awaitable<void> Connection::serve_http1() {
  for (;;) {
    auto status = co_await read_request_head();
    if (status == ParseStatus::need_more) co_return;  // the client closed between requests
    if (status == ParseStatus::malformed) {
      co_return co_await reply("400 Bad Request", "lpk router: malformed request\n", true);
    }
    if (status == ParseStatus::too_large) {
      co_return co_await reply("431 Request Header Fields Too Large",
                               "lpk router: request head over 64 KiB\n", true);
    }
    ++requests_;
    if (!co_await exchange() || shared_->draining) co_return;
  }
}

asio::awaitable<ParseStatus> Connection::read_request_head() {
  for (;;) {
    auto status = parse_request_head(in_.data(), request_);
    if (status != ParseStatus::need_more) co_return status;
    if (in_.full()) co_return ParseStatus::too_large;
    if (in_.empty() && shared_->draining) co_return ParseStatus::need_more;
    idle_ = in_.empty();
    if (idle_) idle_since_ = std::chrono::steady_clock::now();
    auto ec = co_await read_more(client_, in_);
    idle_ = false;
    if (ec) co_return ParseStatus::need_more;
  }
}

asio::awaitable<bool> Connection::exchange() {
  auto pick = shared_->table.pick([this](std::string_view name) { return request_.find(name); },
                                  port_.port);
  // No backend at all: refused, as a Service without endpoints.
  if (!pick.endpoint && port_.fallback_host.empty()) co_return false;
  // (pick.route points into the table, which an update may replace while this waits.)
  std::string session = pick.route ? pick.route->session : std::string();
  const bool close = request_.close;
  const bool has_body = request_.body != BodyKind::none;
  for (int attempt = 0;; ++attempt) {
    std::string why;
    auto* up = co_await upstream_for(pick.endpoint, why);
    if (!up) {
      spdlog::warn("router: 502 for {} {} ({}): cannot reach {}", request_.method, request_.target,
                   session.empty() ? "original" : "session " + session, why);
      if (!has_body) in_.consume(request_.size);
      co_await reply("502 Bad Gateway", "lpk router: cannot reach the backend: " + why + "\n",
                     close || has_body);
      co_return !(close || has_body);
    }
    const bool reused = up->reused;
    bool body_done = false;
    auto outcome = co_await send_request(*up, body_done);
    if (outcome == Outcome::stale && reused && !has_body && attempt == 0) {
      continue;  // a kept-alive upstream the server closed meanwhile: once more, on a new one
    }
    if (outcome == Outcome::stale || outcome == Outcome::bad_gateway) {
      if (!has_body) in_.consume(request_.size);  // never sent on: still in the buffer
      co_await reply("502 Bad Gateway", "lpk router: the backend sent no valid response\n",
                     close || has_body);
      co_return !(close || has_body);
    }
    co_return outcome == Outcome::keep&& body_done && !close;
  }
}

asio::awaitable<Connection::Outcome> Connection::send_request(Upstream& up, bool& body_done) {
  const bool head_request = request_.method == "HEAD";
  const bool connect_request = request_.method == "CONNECT";
  if (request_.body == BodyKind::none) {
    // The head stays in `in_` until a response comes: a retry sends it again.
    if (co_await write_all(up.socket, in_.data().substr(0, request_.size), to_upstream_)) {
      error_code ec;
      up.socket.close(ec);
      co_return Outcome::stale;
    }
    auto size = request_.size;
    auto outcome = co_await relay_response(up, head_request, connect_request, size);
    body_done = true;
    co_return outcome;
  }
  // Streamed while the response is read: a 100 Continue (or an early final answer) may come
  // before the body is complete.
  framer_.start(request_.body, request_.content_length);
  auto both =
      co_await (send_body(up, body_done) || relay_response(up, head_request, connect_request, 0));
  co_return both.index() == 0 ? std::get<0>(both) : std::get<1>(both);
}

asio::awaitable<Connection::Outcome> Connection::send_body(Upstream& up, bool& body_done) {
  auto end = co_await stream_body(client_, in_, request_.size, up.socket, framer_, to_upstream_);
  if (end != BodyEnd::done) co_return Outcome::close;
  body_done = true;
  co_await park();
  co_return Outcome::close;
}

asio::awaitable<Connection::Outcome> Connection::relay_response(Upstream& up, bool head_request,
                                                                bool connect_request,
                                                                std::size_t pending_head) {
  bool relayed = false;  // a 1xx went to the client
  for (;;) {
    auto status = parse_response_head(up.buffer.data(), head_request, connect_request, response_);
    if (status == ParseStatus::need_more && !up.buffer.full()) {
      if (!co_await read_more(up.socket, up.buffer)) continue;
      error_code ec;
      up.socket.close(ec);
      co_return relayed   ? Outcome::close
      : up.buffer.empty() ? Outcome::stale
                          : Outcome::bad_gateway;
    }
    if (status != ParseStatus::complete) {
      error_code ec;
      up.socket.close(ec);
      co_return relayed ? Outcome::close : Outcome::bad_gateway;
    }
    in_.consume(pending_head);  // the request head has done its work
    pending_head = 0;
    bool tunnel = response_.status == 101 ||
                  (connect_request && response_.status >= 200 && response_.status < 300);
    if (tunnel) {
      co_await (pump(client_, in_, up.socket, false, to_upstream_) &&
                pump(up.socket, up.buffer, client_, false, to_client_));
      co_return Outcome::close;
    }
    if (response_.status >= 200) co_return co_await relay_final(up);
    if (co_await write_all(client_, up.buffer.data().substr(0, response_.size), to_client_)) {
      co_return Outcome::close;
    }
    up.buffer.consume(response_.size);
    relayed = true;
  }
}

asio::awaitable<Connection::Outcome> Connection::relay_final(Upstream& up) {
  response_framer_.start(response_.body, response_.content_length);
  // A server that closes after a response whose end its framing marks (many send `Connection:
  // close` on every answer) ends only the upstream connection: the client's stays open for its
  // next request, which may go elsewhere. The Connection field is hop-by-hop: it goes.
  const bool keep_client = response_.close && response_.minor == 1 && !request_.close &&
                           response_.body != BodyKind::until_close;
  std::size_t head = response_.size;
  if (keep_client) {
    if (co_await write_all(client_, without_connection_fields(up.buffer.data().substr(0, head)),
                           to_client_)) {
      co_return Outcome::close;
    }
    up.buffer.consume(head);
    head = 0;
  }
  auto end =
      co_await stream_body(up.socket, up.buffer, head, client_, response_framer_, to_client_);
  up.reused = true;
  if (end != BodyEnd::done || response_.close) {
    error_code ec;
    up.socket.close(ec);
    co_return end == BodyEnd::done&& keep_client ? Outcome::keep : Outcome::close;
  }
  co_return Outcome::keep;
}

asio::awaitable<Connection::Upstream*> Connection::upstream_for(std::optional<tcp::endpoint> to,
                                                                std::string& why) {
  tcp::endpoint key = to ? *to : tcp::endpoint{};
  Upstream* up = nullptr;
  for (auto& u : upstreams_) {
    if (u->key == key) up = u.get();
  }
  if (up && up->socket.is_open()) co_return up;
  auto socket = co_await dial_backend(to, port_, shared_->options.connect_timeout, why);
  if (!socket) co_return nullptr;
  if (!up) {
    if (upstreams_.size() >= kMaxUpstreams) upstreams_.erase(upstreams_.begin());
    upstreams_.push_back(std::make_unique<Upstream>(key, std::move(*socket)));
    co_return upstreams_.back().get();
  }
  up->socket = std::move(*socket);
  up->buffer.consume(up->buffer.data().size());
  up->reused = false;
  co_return up;
}

asio::awaitable<void> Connection::reply(std::string_view status, std::string_view body,
                                        bool close) {
  auto text =
      fmt::format("HTTP/1.1 {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n{}",
                  status, body.size(), close ? "connection: close\r\n" : "", body);
  co_await write_all(client_, text, to_client_);
  if (close) {
    error_code ec;
    client_.shutdown(tcp::socket::shutdown_send, ec);
  }
}

}  // namespace lpk::router::detail
