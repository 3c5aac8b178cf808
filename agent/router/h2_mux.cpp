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
#include "agent/router/h2_sniff.hpp"
#include "proxy/tunnel/listen.hpp"

namespace lpk::router::detail {

namespace {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
using agent::kTuple;
using asio::ip::tcp;
using boost::system::error_code;
using h2::Error;

/// Credit is given back in pieces of at least this (one WINDOW_UPDATE per 16 KiB written).
constexpr std::uint32_t kUpdateAt = 16 * 1024;
/// Frames without credit (HEADERS, RST_STREAM, PING ACKs...) queued toward a peer that does not
/// read: past this the peer is dropped.
constexpr std::size_t kMaxControlQueued = 1024 * 1024;
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
  spdlog::debug("router: HTTP/2 connection on port {} ends: {} streams routed", port_.port,
                requests_);
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
    for (std::size_t i = 0; i < n; ++i) {
      Item item = std::move(p->out.front());
      p->out.pop_front();
      if (item.credit == 0) p->control_bytes -= item.bytes.size();
      if (item.credit > 0 && !stopped_) give_back_item(item);
    }
  }
  error_code ec;
  p->socket.shutdown(tcp::socket::shutdown_send, ec);
  p->socket.close(ec);
}

void H2Mux::send(Peer& to, std::string bytes) {
  to.control_bytes += bytes.size();
  to.out.push_back(Item{std::move(bytes), {}, 0, 0});
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
      on_rst_stream(p, f);
      return Error::no_error;
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

void H2Mux::on_rst_stream(Peer& p, const h2::Frame& f) {
  Stream* s = stream_of(p, f.stream);
  if (!s) return;
  auto code = static_cast<Error>(h2::read_be(f.payload, 0, 4));
  if (p.client) {
    reset(*s, std::nullopt, code);
    return;
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

std::shared_ptr<H2Mux::Peer> H2Mux::upstream_for(std::optional<tcp::endpoint> to) {
  for (auto& u : upstreams_) {
    if (u->key == to && !u->retired && !u->closing) return u;
  }
  // One connection per backend; beyond the limit the oldest idle one goes.
  if (upstreams_.size() >= kMaxUpstreams) {
    auto idle = std::find_if(upstreams_.begin(), upstreams_.end(),
                             [](const auto& u) { return u->ids.empty() && u->waiting.empty(); });
    if (idle != upstreams_.end()) {
      (*idle)->retired = true;
      error_code ec;
      (*idle)->socket.close(ec);
      (*idle)->wake.cancel();
      upstreams_.erase(idle);
    }
  }
  auto u = std::make_shared<Peer>(client_->socket.get_executor(), false);
  u->key = to;
  upstreams_.push_back(u);
  asio::co_spawn(client_->socket.get_executor(), serve_upstream(u), asio::detached);
  return u;
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

void H2Mux::open_waiting(Peer& u) {
  while (u.ready && !u.waiting.empty() && u.ids.size() < u.remote.max_concurrent_streams) {
    auto it = streams_.find(u.waiting.front());
    u.waiting.pop_front();
    if (it == streams_.end()) continue;
    Stream& s = *it->second;
    if (u.retired || u.next_id > 0x7fffffffu) {
      u.retired = true;  // ids used up: a new connection takes the stream
      s.upstream = upstream_for(u.key);
      s.upstream->waiting.push_back(s.id);
      open_waiting(*s.upstream);
      continue;
    }
    s.up_id = u.next_id;
    u.next_id += 2;
    u.ids[s.up_id] = s.id;
    s.up.window = u.remote.initial_window_size;
    pump(s, true);
  }
}

void H2Mux::upstream_gone(Peer& u, bool goaway, std::uint32_t last) {
  // Streams not sent yet go to a new connection to the same backend.
  for (auto id : std::deque<std::uint32_t>(std::exchange(u.waiting, {}))) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    it->second->upstream = upstream_for(u.key);
    it->second->upstream->waiting.push_back(id);
    open_waiting(*it->second->upstream);
  }
  std::vector<std::uint32_t> gone;  // client ids: the calls below change u.ids
  for (auto [up_id, id] : u.ids) {
    if (!goaway || up_id > last) gone.push_back(id);
  }
  for (auto id : gone) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    Stream& s = *it->second;
    auto key = s.upstream->key;
    detach_upstream(s);
    if (goaway && !s.retry.empty() && !s.responded) {
      s.up.pending.assign(1, Part{true, s.retry, {}, 0, true});  // never seen: once more
      s.up.ended = false;
      s.upstream = upstream_for(key);
      s.upstream->waiting.push_back(id);
      open_waiting(*s.upstream);
    } else if (s.down.received_end) {
      discard(s.up, client_.get());  // the response is whole: it goes on to the client
      s.up.ended = true;
      finish_if_done(s);
    } else if (goaway) {
      reset(s, Error::refused_stream, std::nullopt);  // never seen: a gRPC client retries
    } else if (!s.responded) {
      respond_error(s, "the backend closed the connection");
    } else {
      reset(s, Error::internal, std::nullopt);
    }
  }
  if (u.ids.empty()) u.closing = true;
  u.wake.cancel();
}

H2Mux::Stream* H2Mux::stream_of(Peer& p, std::uint32_t id) {
  if (!p.client) {
    auto it = p.ids.find(id);
    if (it == p.ids.end()) return nullptr;
    id = it->second;
  }
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void H2Mux::pump(Stream& s, bool up) {
  Half& h = up ? s.up : s.down;
  Peer* to = up ? s.upstream.get() : client_.get();
  if (!to || (up && (s.up_id == 0 || !to->ready))) return;
  const std::uint32_t id = up ? s.up_id : s.id;
  Peer* from = up ? client_.get() : s.upstream.get();
  bool sent = false;
  while (!h.pending.empty()) {
    Part& part = h.pending.front();
    if (part.is_headers) {
      std::string block, bytes;
      HpackEncoder::encode(part.headers, block);
      h2::append_headers(bytes, id, block, part.end, to->remote.max_frame_size);
      send(*to, std::move(bytes));
    } else {
      const std::int64_t room = std::max<std::int64_t>(0, std::min(h.window, to->send_window));
      const std::size_t n = std::min<std::size_t>(
          {part.data.size() - part.offset, to->remote.max_frame_size, std::size_t(room)});
      if (n == 0 && part.offset < part.data.size()) break;  // the windows are closed
      const bool end = part.end && part.offset + n == part.data.size();
      Item item;
      h2::append_frame(item.bytes, h2::kData, end ? h2::kEndStream : 0, id,
                       std::string_view(part.data).substr(part.offset, n));
      item.credit = static_cast<std::uint32_t>(n);
      if (from) item.sender = up ? client_ : s.upstream;
      item.stream = up ? s.id : s.up_id;
      h.window -= n;
      to->send_window -= n;
      part.offset += n;
      to->out.push_back(std::move(item));
      sent = true;
      if (part.offset < part.data.size()) continue;
    }
    h.ended = part.end;
    h.pending.pop_front();
  }
  if (sent) to->wake.cancel();
  finish_if_done(s);
}

void H2Mux::pump_toward(Peer& p) {
  std::vector<std::uint32_t> ids;  // pump may end streams
  for (auto& [id, s] : streams_) {
    if (p.client || s->upstream.get() == &p) ids.push_back(id);
  }
  for (auto id : ids) {
    if (auto it = streams_.find(id); it != streams_.end()) pump(*it->second, !p.client);
  }
}

bool H2Mux::finish_if_done(Stream& s) {
  if (!s.up.ended || !s.down.ended) return false;
  // The response is whole while the client still sends: it may stop (RFC 9113 8.1).
  if (!s.up.received_end) {
    reset(s, Error::no_error, std::nullopt);
  } else {
    erase(s);
  }
  return true;
}

void H2Mux::respond_error(Stream& s, std::string_view why) {
  detach_upstream(s);
  discard(s.up, client_.get());
  s.up.ended = true;
  discard(s.down, nullptr);
  std::string body = "lpk router: " + std::string(why) + "\n";
  s.down.pending.push_back(Part{true,
                                {{":status", "502"},
                                 {"content-type", "text/plain"},
                                 {"content-length", std::to_string(body.size())}},
                                {},
                                0,
                                false});
  s.down.pending.push_back(Part{false, {}, std::move(body), 0, true});
  s.down.received_end = s.responded = true;
  pump(s, false);
}

void H2Mux::detach_upstream(Stream& s) {
  if (!s.upstream) return;
  auto u = std::move(s.upstream);
  if (s.up_id != 0) {
    u->ids.erase(s.up_id);
    s.up_id = 0;
  } else {
    std::erase(u->waiting, s.id);
  }
  // What the backend sent and the client has yet to take may still go on (a whole response):
  // the backend's connection window gets it back now, as the stream no longer counts there.
  std::uint32_t held = 0;
  for (const auto& part : s.down.pending) held += part.data.size() - part.offset;
  if (held > 0) give_back(*u, nullptr, 0, held);
  if (u->retired && u->ids.empty() && u->waiting.empty()) {
    u->closing = true;
    u->wake.cancel();
  } else {
    open_waiting(*u);
  }
}

void H2Mux::reset(Stream& s, std::optional<Error> to_client, std::optional<Error> to_upstream) {
  if (to_upstream && s.upstream && s.up_id != 0) {
    std::string bytes;
    h2::append_rst_stream(bytes, s.up_id, *to_upstream);
    send(*s.upstream, std::move(bytes));
  }
  if (to_client) {
    std::string bytes;
    h2::append_rst_stream(bytes, s.id, *to_client);
    send(*client_, std::move(bytes));
  }
  erase(s);
}

void H2Mux::erase(Stream& s) {
  detach_upstream(s);
  discard(s.up, client_.get());
  discard(s.down, nullptr);
  auto it = streams_.find(s.id);
  if (it != streams_.end()) streams_.erase(it);  // `s` is gone
  if (goaway_received_ && streams_.empty()) {
    client_->closing = true;
    client_->wake.cancel();
  }
}

void H2Mux::discard(Half& h, Peer* sender) {
  // Bytes that will not go on: the sender's connection window gets them back.
  std::uint32_t bytes = 0;
  for (const auto& part : h.pending) bytes += part.data.size() - part.offset;
  h.pending.clear();
  if (sender && bytes > 0) give_back(*sender, nullptr, 0, bytes);
}

void H2Mux::give_back(Peer& sender, Half* half, std::uint32_t stream, std::uint32_t n) {
  std::string bytes;
  sender.unacked += n;
  if (sender.unacked >= kUpdateAt) {
    h2::append_window_update(bytes, 0, sender.unacked);
    sender.recv_window += sender.unacked;
    sender.unacked = 0;
  }
  if (half && !half->received_end) {
    half->unacked += n;
    if (half->unacked >= kUpdateAt) {
      h2::append_window_update(bytes, stream, half->unacked);
      half->recv_window += half->unacked;
      half->unacked = 0;
    }
  }
  if (!bytes.empty() && sender.socket.is_open()) send(sender, std::move(bytes));
}

void H2Mux::give_back_item(const Item& item) {
  auto sender = item.sender.lock();
  if (!sender) return;
  Stream* s = stream_of(*sender, item.stream);
  give_back(*sender, s ? (sender->client ? &s->up : &s->down) : nullptr, item.stream, item.credit);
}

}  // namespace lpk::router::detail
