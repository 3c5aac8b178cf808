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
  auto& pool = session_->pool();
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
    auto buffer = pool.take();
    auto want = std::min<std::uint64_t>(send_.available(), session_->chunk_size());
    error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buffer.get(), want), ec);
    if (would_block(ec)) {
      pool.give(std::move(buffer));
      auto [wait_ec] = co_await socket_.async_wait(tcp::socket::wait_read,
                                                   asio::as_tuple(asio::use_awaitable));
      if (wait_ec && !closed_) fail_local(wait_ec);
      continue;
    }
    if (ec == asio::error::eof) {
      pool.give(std::move(buffer));
      send_fin();
      break;
    }
    if (ec) {
      pool.give(std::move(buffer));
      if (!closed_) fail_local(ec);
      break;
    }
    send_.on_sent(n);
    bytes_up_ += n;
    ++chunks_queued_;
    session_->queue_data(self, std::move(buffer), n, false);
    drained = n < want;
  }
}

void Stream::wake() {
  if (waiting_) wake_.cancel();
}

void Stream::send_fin() {
  fin_sent_ = true;
  ++chunks_queued_;
  session_->queue_data(shared_from_this(), nullptr, 0, true);
  maybe_finish();
}

void Stream::on_chunk_written(std::unique_ptr<std::byte[]> buffer) {
  session_->pool().give(std::move(buffer));
  --chunks_queued_;
  wake();
}

void Stream::on_window(const WindowFrame& window) {
  if (closed_) return;
  if (!send_.on_window(window)) {
    reset(ResetCode::protocol_error, "window acknowledges bytes never sent");
    return;
  }
  wake();
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
  }
  if (fin_sent_ && shut_down_send_) finish("closed", false);
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
