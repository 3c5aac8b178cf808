#include "proxy/tunnel/detail/stream.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

#include "proxy/tunnel/codec.hpp"
#include "proxy/tunnel/detail/buffer_pool.hpp"
#include "proxy/tunnel/session.hpp"

namespace lpk::tunnel::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// A read goes into the last chunk still held when that chunk holds little (the stream moves
// small messages: each would otherwise keep a whole buffer) and has room. Bulk reads get
// buffers of their own, as large as the credit allows: reading into what is left of a
// chunk would cut them short.
constexpr std::size_t kSmallChunk = 16 * 1024;
constexpr std::size_t kMinTailRead = 4096;

bool would_block(const error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

bool is_normal_ending(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::operation_aborted;
}

}  // namespace

Stream::Stream(std::shared_ptr<Session> session, std::uint32_t id, Target target,
               tcp::socket socket, bool connected)
    : session_(std::move(session)),
      id_(id),
      target_(std::move(target)),
      socket_(std::move(socket)),
      wake_(socket_.get_executor()),
      send_(session_->peer_hello_.initial_window),
      receive_(session_->local_hello_.initial_window, session_->options_.max_window),
      outbox_(session_->pool().buffer_size()),
      started_(Clock::now()),
      connected_(connected) {}

void Stream::start() {
  error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
  asio::co_spawn(socket_.get_executor(), pump_local(), asio::detached);
}

void Stream::attach(tcp::socket socket) {
  socket_ = std::move(socket);
  connected_ = true;
  start();
  if (!pending_.empty()) {
    start_local_write();
  } else if (remote_fin_) {
    maybe_finish();
  }
}

asio::awaitable<void> Stream::pump_local() {
  auto self = shared_from_this();
  // After a short read the socket is drained, and any byte arriving later raises an event
  // that the next poll reports; so, as long as this coroutine has not suspended since, it may
  // wait without first trying a read that would only say EAGAIN.
  bool drained = false;
  while (!closed_ && !fin_sent_) {
    if (send_.available() == 0 || chunks_queued_ >= kMaxQueuedChunks) {
      waiting_ = true;
      wake_.expires_at(Clock::time_point::max());
      co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
      waiting_ = false;
      drained = false;
      continue;
    }
    if (drained) {
      drained = false;
      auto [wait_ec] = co_await socket_.async_wait(tcp::socket::wait_read,
                                                   asio::as_tuple(asio::use_awaitable));
      if (wait_ec && !closed_) fail_local(wait_ec);
      continue;
    }
    // Read first and wait only when nothing is there: a busy stream skips a poll per chunk,
    // and an idle one parks without holding a buffer.
    auto ec = read_into_outbox(drained);
    if (would_block(ec)) {
      auto [wait_ec] = co_await socket_.async_wait(tcp::socket::wait_read,
                                                   asio::as_tuple(asio::use_awaitable));
      if (wait_ec && !closed_) fail_local(wait_ec);
      continue;
    }
    if (ec == asio::error::eof) {
      send_fin();
      break;
    }
    if (ec) {
      if (!closed_) fail_local(ec);
      break;
    }
  }
}

// One non-blocking read of what the credit allows, queued for the link. Small reads fill the
// last chunk still held, so kept bytes cost at most four times their size, not a buffer each.
error_code Stream::read_into_outbox(bool& drained) {
  auto& pool = session_->pool();
  auto want = std::min<std::uint64_t>(send_.available(), session_->chunk_size());
  std::unique_ptr<std::byte[]> buffer;
  std::byte* into = nullptr;
  if (auto room = outbox_.tail_room();
      room.size() >= kMinTailRead && outbox_.tail_size() < kSmallChunk) {
    into = room.data();
    want = std::min<std::uint64_t>(want, room.size());
  } else {
    buffer = pool.take();
    into = buffer.get();
  }
  error_code ec;
  std::size_t n = socket_.read_some(asio::buffer(into, want), ec);
  if (ec) {
    pool.give(std::move(buffer));
    return ec;
  }
  send_.on_sent(n);
  bytes_up_ += n;
  auto end = buffer ? outbox_.append(std::move(buffer), n) : outbox_.extend_tail(n);
  queue_chunk(into, n, end, false);
  drained = n < want;
  return {};
}

void Stream::wake() {
  if (waiting_) wake_.cancel();
}

void Stream::send_fin() {
  fin_sent_ = true;
  queue_chunk(nullptr, 0, outbox_.end(), true);
  maybe_finish();
}

void Stream::queue_chunk(const std::byte* data, std::size_t size, std::uint64_t end, bool fin) {
  // Not queued while the link is down: the bytes stay in the outbox for the resume.
  if (session_->queue_data(shared_from_this(), data, size, fin, end)) ++chunks_queued_;
}

void Stream::on_chunk_written(std::uint64_t end) {
  --chunks_queued_;
  written_ = std::max(written_, end);
  release_sent();
  wake();
}

// Written chunks are forgotten at once, or, in a resumable session, once the peer has
// consumed them.
void Stream::release_sent() {
  let_go_below(session_->resumable() ? std::min(written_, send_.acked()) : written_);
}

void Stream::let_go_below(std::uint64_t offset) {
  outbox_.release_below(offset, [this](auto b) { session_->pool().give(std::move(b)); });
}

void Stream::on_window(const WindowFrame& window, bool fin_delivered) {
  if (closed_) return;
  if (!send_.on_window(window)) {
    reset(ResetCode::protocol_error, "window acknowledges bytes never sent");
    return;
  }
  if (fin_delivered) {
    if (!fin_sent_ || window.consumed != send_.sent()) {
      reset(ResetCode::protocol_error, "window acknowledges an end of stream never sent");
      return;
    }
    fin_acked_ = true;
  }
  release_sent();
  maybe_finish();
  if (!closed_) wake();
}

ResumeFrame Stream::resume_state() const {
  return ResumeFrame{.received = receive_.received(),
                     .fin_received = remote_fin_,
                     .fin_delivered = shut_down_send_};
}

void Stream::on_link_lost() {
  chunks_queued_ = 0;
  window_update_queued = false;
}

void Stream::resume(const ResumeFrame& peer) {
  if (closed_) return;
  // The peer cannot have less than it consumed, nor more than was read here; and what it lacks
  // is still held (only bytes it consumed were let go).
  std::vector<SendBuffer::Slice> slices;
  if (peer.received < send_.acked() || (peer.fin_received && !fin_sent_) ||
      !outbox_.slices_from(peer.received, slices)) {
    return reset(ResetCode::protocol_error, "the peer resumes from bytes this side never sent");
  }
  let_go_below(peer.received);
  written_ = peer.received;
  const std::size_t most = session_->chunk_size();
  for (const auto& slice : slices) {
    for (std::size_t at = 0; at < slice.size; at += most) {
      auto n = std::min(most, slice.size - at);
      queue_chunk(slice.data + at, n, slice.end - slice.size + at + n, false);
      session_->count_retransmitted(n);
    }
  }
  if (fin_sent_ && !peer.fin_received) queue_chunk(nullptr, 0, outbox_.end(), true);
  if (peer.fin_delivered) fin_acked_ = true;
  // Credit again: the peer may have missed the last WINDOW (and our FIN's acknowledgement).
  session_->queue_control(shut_down_send_ ? encode_window_fin_delivered(id_, receive_.current())
                                          : encode_window(id_, receive_.current()));
  maybe_finish();
  if (!closed_) wake();
}

void Stream::end_unknown_to_peer() {
  if (closed_) return;
  // The peer forgets a stream only once both directions ended and it has our FIN, or after a
  // reset. Both FINs here means the former: finish once ours is delivered.
  if (fin_sent_ && remote_fin_) {
    fin_acked_ = true;
    maybe_finish();
    return;
  }
  spdlog::info("stream {} to {}: ended by the far side while the link was down", id_,
               target_.to_string());
  close_quietly("ended by the far side while the link was down");
}

void Stream::on_open_result(const OpenResultFrame& result) {
  if (closed_ || result.code == OpenCode::ok) return;
  spdlog::info("stream {} to {}: {}", id_, target_.to_string(),
               describe(result.code, result.reason));
  close_quietly("refused by the far side");
}

void Stream::on_reset(const ResetFrame& reset) {
  if (closed_) return;
  spdlog::debug("stream {} to {} reset by peer: {} {}", id_, target_.to_string(),
                to_string(reset.code), reset.reason);
  close_quietly("reset by peer");
}

void Stream::on_data(std::span<const std::byte> payload, bool fin) {
  if (closed_) return;
  if (remote_fin_) return reset(ResetCode::protocol_error, "data after end of stream");
  if (!receive_.on_data(payload.size())) {
    return reset(ResetCode::flow_control, "data beyond the granted window");
  }
  bytes_down_ += payload.size();
  if (!payload.empty()) deliver(payload);
  if (fin && !closed_) {
    remote_fin_ = true;
    maybe_finish();
  }
}

void Stream::deliver(std::span<const std::byte> bytes) {
  if (connected_ && pending_.empty()) {
    error_code ec;
    std::size_t n = socket_.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec && !would_block(ec)) return fail_local(ec);
    if (!ec) {
      bytes = bytes.subspan(n);
      consumed(n);
    }
    if (bytes.empty() || closed_) return;
  }
  // Append to the last buffer before taking another, so buffered memory follows the bytes
  // (bounded by the window), not the number of frames: a peer sending one-byte frames must
  // not cost a whole buffer each. Bytes past `end` are not part of any write in flight.
  auto& pool = session_->pool();
  const std::size_t capacity = pool.buffer_size();
  while (!bytes.empty()) {
    if (pending_.empty() || pending_.back().end == capacity) {
      pending_.push_back({pool.take(), 0, 0});
    }
    auto& tail = pending_.back();
    auto n = std::min(capacity - tail.end, bytes.size());
    std::memcpy(tail.buffer.get() + tail.end, bytes.data(), n);
    tail.end += n;
    bytes = bytes.subspan(n);
  }
  if (connected_) start_local_write();
}

void Stream::start_local_write() {
  if (writing_ || pending_.empty()) return;
  writing_ = true;
  // The array is passed by value: Asio keeps a copy of the sequence, not a view of it.
  // Unused entries stay empty and writev skips them.
  std::array<asio::const_buffer, 4> buffers{};
  std::size_t count = 0;
  for (auto& p : pending_) {
    if (count == buffers.size()) break;
    buffers[count++] = asio::buffer(p.buffer.get() + p.begin, p.end - p.begin);
  }
  socket_.async_write_some(buffers,
                           [self = shared_from_this()](error_code ec, std::size_t n) {
                             self->on_local_written(ec, n);
                           });
}

void Stream::on_local_written(error_code ec, std::size_t n) {
  writing_ = false;
  if (closed_) return;
  if (ec) return fail_local(ec);
  std::size_t left = n;
  std::size_t done = 0;
  while (done < pending_.size() && left >= pending_[done].end - pending_[done].begin) {
    left -= pending_[done].end - pending_[done].begin;
    session_->pool().give(std::move(pending_[done].buffer));
    ++done;
  }
  pending_.erase(pending_.begin(), pending_.begin() + done);
  if (left > 0) pending_.front().begin += left;
  consumed(n);
  if (closed_) return;
  if (!pending_.empty()) return start_local_write();
  maybe_finish();
}

void Stream::consumed(std::size_t n) {
  if (receive_.on_consumed(n, Clock::now(), session_->srtt())) {
    session_->queue_window_update(shared_from_this());
  }
}

void Stream::maybe_finish() {
  if (closed_) return;
  // Everything the peer sent has reached the socket: pass its end of stream on.
  if (remote_fin_ && connected_ && pending_.empty() && !writing_ && !shut_down_send_) {
    shut_down_send_ = true;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    // Tell a resumable peer that its FIN arrived, so that it may forget the stream.
    if (session_->resumable()) {
      session_->queue_control(encode_window_fin_delivered(id_, receive_.current()));
    }
  }
  // A resumable stream ends once the peer has our FIN too: until then a lost link could
  // still take the last bytes with it.
  if (fin_sent_ && shut_down_send_ && (fin_acked_ || !session_->resumable())) {
    finish("closed", false);
  }
}

void Stream::reset(ResetCode code, std::string reason) {
  if (closed_) return;
  spdlog::warn("stream {} to {}: {} ({})", id_, target_.to_string(), to_string(code), reason);
  session_->queue_control(encode_reset(id_, code, reason));
  reset_ = true;
  finish("reset", true);
}

void Stream::fail_local(error_code ec) {
  if (closed_) return;
  if (!is_normal_ending(ec)) {
    spdlog::warn("stream {} to {}: local socket: {}", id_, target_.to_string(), ec.message());
  }
  session_->queue_control(encode_reset(id_, ResetCode::connection_reset, ec.message()));
  reset_ = true;
  finish("local socket failed", true);
}

void Stream::close_quietly(const char* why) {
  if (closed_) return;
  reset_ = true;
  finish(why, true);
}

void Stream::abort() {
  if (closed_) return;
  reset_ = true;
  release(true);
}

void Stream::release(bool abortive) {
  closed_ = true;
  error_code ec;
  if (socket_.is_open()) {
    // An abortive close (RST) tells the local client that the far end failed, as a direct
    // connection would have.
    if (abortive) socket_.set_option(asio::socket_base::linger(true, 0), ec);
    socket_.close(ec);
  }
  wake_.cancel();
  for (auto& p : pending_) session_->pool().give(std::move(p.buffer));
  pending_.clear();
}

void Stream::finish(const char* how, bool abortive) {
  if (closed_) return;
  release(abortive);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_);
  spdlog::debug("stream {} {} {}: {} bytes up, {} down, {} ms", id_, target_.to_string(), how,
                bytes_up_, bytes_down_, ms.count());
  session_->forget(id_);
}

}  // namespace lpk::tunnel::detail
