// H2Mux's streams (detail/h2_mux.hpp): their upstream connections, what each half may send,
// and their ends. h2_mux.cpp has the connections' reading, writing and frames.
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "agent/router/detail/connection.hpp"
#include "agent/router/detail/h2_mux.hpp"

namespace lpk::router::detail {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using h2::Error;

/// Credit is given back in pieces of at least this (one WINDOW_UPDATE per 16 KiB written).
constexpr std::uint32_t kUpdateAt = 16 * 1024;
/// Connections a stream is sent on at most, when backends say GOAWAY before they see it.
constexpr int kMaxTries = 3;

}  // namespace

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

void H2Mux::open_waiting(Peer& u) {
  while (u.ready && !u.waiting.empty() && u.ids.size() < u.remote.max_concurrent_streams) {
    auto it = streams_.find(u.waiting.front());
    u.waiting.pop_front();
    if (it == streams_.end()) continue;
    Stream& s = *it->second;
    if (u.retired || u.next_id > 0x7fffffffu) {
      u.retired = true;  // ids used up: a new connection takes the stream
      rehome(s, u.key);
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
  // Streams not sent yet: after a GOAWAY, to a new connection to the same backend; a backend
  // whose connection broke answers them no better on the next one.
  for (auto id : std::deque<std::uint32_t>(std::exchange(u.waiting, {}))) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    if (goaway && ++it->second->tries <= kMaxTries) {
      rehome(*it->second, u.key);
    } else {
      respond_error(*it->second, "the backend closed the connection");
    }
  }
  std::vector<std::uint32_t> gone;  // client ids: the calls below change u.ids
  for (auto [up_id, id] : u.ids) {
    if (!goaway || up_id > last) gone.push_back(id);
  }
  for (auto id : gone) {
    auto it = streams_.find(id);
    if (it != streams_.end()) stream_gone(*it->second, goaway);
  }
  if (u.ids.empty()) u.closing = true;
  u.wake.cancel();
}

void H2Mux::stream_gone(Stream& s, bool goaway) {
  auto key = s.upstream->key;
  detach_upstream(s);
  if (goaway && !s.retry.empty() && !s.responded && ++s.tries <= kMaxTries) {
    s.up.pending.assign(1, Part{true, s.retry, {}, 0, true});  // never seen: once more
    s.up.ended = false;
    rehome(s, key);
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

void H2Mux::rehome(Stream& s, std::optional<tcp::endpoint> key) {
  s.upstream = upstream_for(key);
  s.upstream->waiting.push_back(s.id);
  open_waiting(*s.upstream);
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
