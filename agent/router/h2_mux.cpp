#include "agent/router/detail/h2_mux.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "agent/coro.hpp"
#include "agent/router/detail/connection.hpp"
#include "agent/router/detail/dial_backend.hpp"
#include "agent/router/h2_frame.hpp"
#include "proxy/tunnel/listen.hpp"

namespace lpk::router::detail {

namespace {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
using agent::kTuple;
using asio::ip::tcp;
using boost::system::error_code;
using h2::Error;

/// Frames without credit (HEADERS, RST_STREAM, PING ACKs...) queued toward a peer that does not
/// read: past this the peer is dropped.
constexpr std::size_t kMaxControlQueued = 1024 * 1024;
/// Resets before an answer a client may send before the rapid-reset rule looks at its ratio.
constexpr std::uint64_t kPrematureResetsFloor = 100;
/// A header block's limit (HEADERS and CONTINUATIONs), and SETTINGS_MAX_HEADER_LIST_SIZE.
constexpr std::size_t kMaxHeaderBlock = 64 * 1024;
constexpr std::size_t kMaxGather = 64;  // frames per write

/// The router's SETTINGS (and connection window) toward a client or an upstream.
std::string own_settings(bool toward_client) {
  std::string out;
  if (toward_client) {
    h2::append_settings(out, {{h2::kSettingsMaxConcurrentStreams, kH2MaxClientStreams},
                              {h2::kSettingsInitialWindowSize, kH2StreamWindow},
                              {h2::kSettingsMaxHeaderListSize, kMaxHeaderBlock}});
  } else {
    out.assign(kH2Preface);
    h2::append_settings(out, {{h2::kSettingsEnablePush, 0},
                              {h2::kSettingsInitialWindowSize, kH2StreamWindow},
                              {h2::kSettingsMaxHeaderListSize, kMaxHeaderBlock}});
  }
  h2::append_window_update(out, 0, kH2ConnectionWindow - 65535);
  return out;
}

const std::string* find_field(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return &v;
  }
  return nullptr;
}

}  // namespace

H2Mux::Peer::Peer(asio::any_io_executor ex, bool c)
    : client(c),
      socket(ex),
      in(kInitialBuffer, kBufferSize),
      wake(ex, asio::steady_timer::time_point::max()) {}

H2Mux::H2Mux(std::shared_ptr<Shared> shared, tcp::socket client, std::string_view received,
             PortSpec port)
    : shared_(std::move(shared)), port_(std::move(port)) {
  client_ = std::make_shared<Peer>(client.get_executor(), true);
  client_->socket = std::move(client);
  received.remove_prefix(std::min(received.size(), kH2Preface.size()));
  while (!received.empty()) {  // within the buffer's limit: the sniffer's buffer had the same
    auto room = client_->in.prepare();
    auto n = std::min(room.size(), received.size());
    std::memcpy(room.data(), received.data(), n);
    client_->in.commit(n);
    received.remove_prefix(n);
  }
}

void H2Mux::stop() {
  stopped_ = true;
  error_code ec;
  client_->socket.close(ec);
  client_->wake.cancel();
  for (auto& u : upstreams_) {
    u->socket.close(ec);
    u->wake.cancel();
  }
}

void H2Mux::drain() {
  if (goaway_received_) return;
  goaway_received_ = true;  // as if the client had said it: no new stream
  std::string bytes;
  h2::append_goaway(bytes, client_->last_id, Error::no_error);
  send(*client_, std::move(bytes));
  if (streams_.empty()) client_->closing = true;
}

asio::awaitable<void> H2Mux::run() {
  auto self = shared_from_this();
  send(*client_, own_settings(true));
  co_await (read_client() && write_frames(client_));
  stop();
}

asio::awaitable<void> H2Mux::read_client() {
  auto e = co_await read_frames(*client_);
  if (e != Error::no_error) {
    spdlog::debug("router: HTTP/2 client on port {}: connection error {}", port_.port,
                  static_cast<std::uint32_t>(e));
    std::string bytes;
    h2::append_goaway(bytes, client_->last_id, e);
    send(*client_, std::move(bytes));
  }
  client_->closing = true;  // the writer sends what is queued (the GOAWAY), then closes
  client_->wake.cancel();
}

asio::awaitable<void> H2Mux::read_upstream(std::shared_ptr<Peer> u) {
  auto e = co_await read_frames(*u);
  if (e != Error::no_error) {
    spdlog::warn("router: HTTP/2 backend {} on port {}: connection error {}: its streams reset",
                 u->key ? tunnel::endpoint_text(*u->key) : "(fallback)", port_.port,
                 static_cast<std::uint32_t>(e));
  }
  error_code ec;
  u->socket.close(ec);
  u->wake.cancel();
}

asio::awaitable<h2::Error> H2Mux::read_frames(Peer& p) {
  for (;;) {
    for (;;) {
      h2::Frame f;
      std::size_t used = 0;
      auto status = h2::read_frame(p.in.data(), h2::kDefaultMaxFrame, f, used);
      if (status == h2::ReadStatus::need_more) break;
      auto e = status == h2::ReadStatus::too_large ? Error::frame_size : on_frame(p, f);
      if (e != Error::no_error) co_return e;
      p.in.consume(used);
    }
    if (p.closing || !p.socket.is_open()) co_return Error::no_error;
    auto [ec, n] = co_await p.socket.async_read_some(p.in.prepare(), kTuple);
    p.in.commit(n);
    if (ec) co_return Error::no_error;  // EOF, a reset, or stop()
  }
}

asio::awaitable<void> H2Mux::write_frames(std::shared_ptr<Peer> p) {
  std::vector<asio::const_buffer> buffers;
  for (;;) {
    if (p->out.empty()) {
      if (p->closing || !p->socket.is_open()) break;
      co_await p->wake.async_wait(kTuple);
      continue;
    }
    buffers.clear();
    for (std::size_t i = 0; i < p->out.size() && i < kMaxGather; ++i) {
      buffers.push_back(asio::buffer(p->out[i].bytes));
    }
    const std::size_t n = buffers.size();
    auto [ec, written] = co_await asio::async_write(p->socket, buffers, kTuple);
    if (ec) break;
    (p->client ? to_client_ : to_upstream_) += written;
    for (std::size_t i = 0; i < n; ++i) {
      Item item = std::move(p->out.front());
      p->out.pop_front();
      if (item.control) p->control_bytes -= item.bytes.size();
      if (item.credit > 0 && !stopped_) give_back_item(item);
    }
  }
  error_code ec;
  p->socket.shutdown(tcp::socket::shutdown_send, ec);
  p->socket.close(ec);
}

void H2Mux::send(Peer& to, std::string bytes) {
  to.control_bytes += bytes.size();
  to.out.push_back(Item{std::move(bytes), {}, 0, 0, true});
  to.wake.cancel();
  if (to.control_bytes > kMaxControlQueued) {
    // A peer that sends (PINGs, requests) but does not read what they cause.
    spdlog::warn("router: HTTP/2 {} on port {} does not read: closed",
                 to.client ? "client" : "backend", port_.port);
    error_code ec;
    to.socket.close(ec);
  }
}

h2::Error H2Mux::on_frame(Peer& p, const h2::Frame& f) {
  if (auto e = h2::check_frame(f); e != Error::no_error) return e;
  if (p.block_stream != 0 || f.type == h2::kHeaders || f.type == h2::kContinuation) {
    return on_header_fragment(p, f);
  }
  switch (f.type) {
    case h2::kData:
      return on_data(p, f);
    case h2::kSettings:
      return on_settings(p, f);
    case h2::kWindowUpdate:
      return on_window_update(p, f);
    case h2::kRstStream:
      return on_rst_stream(p, f);
    case h2::kGoaway:
      on_goaway(p, f);
      return Error::no_error;
    case h2::kPing:
      if (!(f.flags & h2::kAck)) {
        std::string bytes;
        h2::append_frame(bytes, h2::kPing, h2::kAck, 0, f.payload);
        send(p, std::move(bytes));
      }
      return Error::no_error;
    default:  // PRIORITY, unknown types
      return Error::no_error;
  }
}

h2::Error H2Mux::on_header_fragment(Peer& p, const h2::Frame& f) {
  if (p.block_stream != 0) {
    // 6.10: nothing but the block's CONTINUATIONs until it ends.
    if (f.type != h2::kContinuation || f.stream != p.block_stream) return Error::protocol;
  } else if (f.type == h2::kContinuation) {
    return Error::protocol;
  } else {
    p.block.clear();
    p.block_stream = f.stream;
    p.block_end_stream = (f.flags & h2::kEndStream) != 0;
  }
  auto fragment = h2::frame_content(f);
  if (p.block.size() + fragment.size() > kMaxHeaderBlock) return Error::enhance_your_calm;
  p.block.append(fragment);
  if (!(f.flags & h2::kEndHeaders)) return Error::no_error;
  return on_header_block(p);
}

h2::Error H2Mux::on_header_block(Peer& p) {
  std::vector<HeaderField> fields;
  const std::uint32_t id = std::exchange(p.block_stream, 0);
  const bool end = p.block_end_stream;
  // Every block is decoded, even one of a stream already gone: the table must follow.
  if (p.decoder.decode(p.block, fields) != HpackError::none) return Error::compression;
  if (p.client && id % 2 == 0) return Error::protocol;
  Stream* s = stream_of(p, id);
  if (!s) {
    if (p.client && id > p.last_id) on_request(id, std::move(fields), end);
    return Error::no_error;  // a stream reset meanwhile
  }
  Half& h = p.client ? s->up : s->down;
  if (h.received_end || (p.client && !end)) {
    // Trailers end the stream; nothing may follow the end.
    reset(*s, Error::protocol, Error::cancel);
    return Error::no_error;
  }
  if (!p.client) s->responded = true;
  h.received_end = end;
  h.pending.push_back(Part{true, std::move(fields), {}, 0, end});
  pump(*s, p.client);
  return Error::no_error;
}

void H2Mux::on_request(std::uint32_t id, std::vector<HeaderField> fields, bool end) {
  client_->last_id = id;
  if (goaway_received_ || stopped_ || streams_.size() >= kH2MaxClientStreams) {
    std::string bytes;
    h2::append_rst_stream(bytes, id, Error::refused_stream);
    send(*client_, std::move(bytes));
    return;
  }
  ++requests_;
  auto pick = shared_->table.pick(
      [&fields](std::string_view name) -> std::optional<std::string_view> {
        if (auto* v = find_field(fields, name)) return std::string_view(*v);
        return std::nullopt;
      },
      port_.port);
  auto& s = *(streams_[id] = std::make_unique<Stream>());
  s.id = id;
  s.down.window = client_->remote.initial_window_size;
  s.up.received_end = end;
  if (end) s.retry = fields;
  s.up.pending.push_back(Part{true, std::move(fields), {}, 0, end});
  if (!pick.endpoint && port_.fallback_host.empty()) {
    respond_error(s, "no original pod known");
    return;
  }
  s.upstream = upstream_for(pick.endpoint);
  s.upstream->waiting.push_back(id);
  open_waiting(*s.upstream);
}

h2::Error H2Mux::on_data(Peer& p, const h2::Frame& f) {
  p.recv_window -= f.length;
  if (p.recv_window < 0) return Error::flow_control;
  Stream* s = stream_of(p, f.stream);
  Half* h = s ? (p.client ? &s->up : &s->down) : nullptr;
  if (!h || h->received_end) {
    give_back(p, nullptr, 0, f.length);  // a stream reset meanwhile: the connection's share
    if (s) reset(*s, Error::stream_closed, Error::cancel);
    return Error::no_error;
  }
  h->recv_window -= f.length;
  if (h->recv_window < 0) return Error::flow_control;
  auto data = h2::frame_content(f);
  if (data.size() < f.length) give_back(p, h, f.stream, f.length - data.size());  // padding
  const bool end = (f.flags & h2::kEndStream) != 0;
  h->received_end = end;
  h->pending.push_back(Part{false, {}, std::string(data), 0, end});
  pump(*s, p.client);
  return Error::no_error;
}

h2::Error H2Mux::on_settings(Peer& p, const h2::Frame& f) {
  if (f.flags & h2::kAck) return Error::no_error;
  const std::int64_t old_window = p.remote.initial_window_size;
  if (auto e = h2::apply_settings(f.payload, p.remote); e != Error::no_error) return e;
  std::string ack;
  h2::append_frame(ack, h2::kSettings, h2::kAck, 0, {});
  send(p, std::move(ack));
  // 6.9.2: a new initial window changes every open stream's window toward the peer.
  const std::int64_t delta = std::int64_t{p.remote.initial_window_size} - old_window;
  for (auto& [id, s] : streams_) {
    if (p.client) {
      s->down.window += delta;
    } else if (s->upstream.get() == &p && s->up_id != 0) {
      s->up.window += delta;
    }
  }
  if (!p.client) {
    p.ready = true;
    open_waiting(p);
  }
  pump_toward(p);
  return Error::no_error;
}

h2::Error H2Mux::on_window_update(Peer& p, const h2::Frame& f) {
  const std::int64_t increment = h2::read_be(f.payload, 0, 4) & 0x7fffffffu;
  if (f.stream == 0) {
    p.send_window += increment;
    if (p.send_window > h2::kMaxWindow) return Error::flow_control;
    pump_toward(p);
    return Error::no_error;
  }
  Stream* s = stream_of(p, f.stream);
  if (!s) return Error::no_error;
  Half& h = p.client ? s->down : s->up;
  h.window += increment;
  if (h.window > h2::kMaxWindow) {
    reset(*s, Error::flow_control, Error::cancel);
    return Error::no_error;
  }
  pump(*s, !p.client);
  return Error::no_error;
}

h2::Error H2Mux::on_rst_stream(Peer& p, const h2::Frame& f) {
  Stream* s = stream_of(p, f.stream);
  if (!s) return Error::no_error;
  auto code = static_cast<Error>(h2::read_be(f.payload, 0, 4));
  if (p.client) {
    if (!s->responded) ++premature_resets_;
    reset(*s, std::nullopt, code);
    // Rapid reset (CVE-2023-44487): streams opened and reset before their answer, as fast as
    // a client can write frames, each costing a backend a stream. Envoy's rule: past 100 such
    // resets, more than half of the connection's streams, the connection goes.
    const bool rapid = premature_resets_ >= kPrematureResetsFloor &&
                       premature_resets_ * 2 > requests_;
    return rapid ? Error::enhance_your_calm : Error::no_error;
  }
  detach_upstream(*s);
  if (code == Error::no_error && s->down.received_end) {
    // RFC 9113 8.1: the response is whole, the rest of the request is not wanted.
    discard(s->up, client_.get());
    s->up.ended = true;
    finish_if_done(*s);
  } else {
    reset(*s, code, std::nullopt);
  }
  return Error::no_error;
}

void H2Mux::on_goaway(Peer& p, const h2::Frame& f) {
  if (p.client) {
    goaway_received_ = true;  // the streams it has go on; no new one comes
    if (streams_.empty()) p.closing = true;
    return;
  }
  p.retired = true;
  upstream_gone(p, true, h2::read_be(f.payload, 0, 4) & 0x7fffffffu);
}

asio::awaitable<void> H2Mux::serve_upstream(std::shared_ptr<Peer> u) {
  auto self = shared_from_this();
  std::string why;
  auto socket = co_await dial_backend(u->key, port_, shared_->options.connect_timeout, why);
  if (stopped_ || u->retired) co_return;
  if (!socket) {
    spdlog::warn("router: HTTP/2 streams on port {} get 502: cannot reach {}", port_.port, why);
    u->retired = true;
    for (auto id : std::deque<std::uint32_t>(std::exchange(u->waiting, {}))) {
      if (auto it = streams_.find(id); it != streams_.end()) {
        respond_error(*it->second, "cannot reach the backend: " + why);
      }
    }
    std::erase(upstreams_, u);
    co_return;
  }
  u->socket = std::move(*socket);
  // Streams open once the backend's SETTINGS came (on_settings): its stream limit is known.
  send(*u, own_settings(false));
  co_await (read_upstream(u) && write_frames(u));
  u->retired = true;
  upstream_gone(*u, false, 0);
  std::erase(upstreams_, u);
}

}  // namespace lpk::router::detail
