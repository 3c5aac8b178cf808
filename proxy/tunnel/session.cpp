#include "proxy/tunnel/session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cstring>
#include <utility>

#include "proxy/tunnel/detail/buffer_pool.hpp"
#include "proxy/tunnel/detail/stream.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::tunnel {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using detail::Stream;

namespace {

constexpr std::size_t kMaxChunksPerWrite = 32;
constexpr std::size_t kMaxBytesPerWrite = 1 << 20;
constexpr std::size_t kMaxQueuedControl = 4 << 20;
constexpr std::uint32_t kMaxChunkSize = 64 * 1024;
// Idle buffers kept for reuse: enough for a few busy streams, small next to the windows.
constexpr std::size_t kMaxPooledBuffers = 32;
constexpr auto kGoAwayGrace = std::chrono::milliseconds(200);
// Fewer link bytes than this between two pings (pings and pongs alone are far fewer) counts as
// idle.
constexpr std::uint64_t kIdleBytesPerPing = 64 * 1024;

std::uint64_t now_ns() {
  return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           Clock::now().time_since_epoch())
                           .count());
}

}  // namespace

asio::awaitable<boost::system::result<HandshakeResult>> Session::exchange_hellos(
    Link& link, const SessionOptions& options, SessionId id, bool resume,
    const std::function<bool(const Hello& peer)>& holds) {
  using namespace asio::experimental::awaitable_operators;
  Hello local;
  local.session_id = id;
  local.capabilities = (options.resume ? std::uint32_t(kCapResume) : 0u) |
                       (options.datagram ? std::uint32_t(kCapDatagram) : 0u);
  local.resume = resume && options.resume;
  local.max_frame_payload = options.max_frame_payload;
  local.max_streams = options.max_streams;
  local.initial_window = options.initial_window;
  auto exchange = [&]() -> asio::awaitable<boost::system::result<HandshakeResult>> {
    if (options.role == Role::proxy) co_return co_await handshake_as_proxy(link, local, options.secret);
    co_return co_await handshake_as_agent(link, local, options.secret, holds);
  };
  asio::steady_timer deadline(co_await asio::this_coro::executor, options.handshake_timeout);
  auto outcome =
      co_await (exchange() || deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 1) {
    link.close();
    co_return error_code(asio::error::timed_out);
  }
  auto result = std::get<0>(std::move(outcome));
  if (!result) link.close();
  co_return result;
}

asio::awaitable<boost::system::result<std::shared_ptr<Session>>> Session::establish(
    std::unique_ptr<Link> link, SessionOptions options, std::shared_ptr<Dialer> dialer,
    SessionId id) {
  auto result = co_await exchange_hellos(*link, options, id, false);
  if (!result) co_return result.error();
  co_return std::make_shared<Session>(std::move(link), std::move(options), std::move(dialer),
                                      result->local, result->peer);
}

Session::Session(std::unique_ptr<Link> link, SessionOptions options,
                 std::shared_ptr<Dialer> dialer, const Hello& local, const Hello& peer)
    : link_(std::move(link)),
      options_(std::move(options)),
      dialer_(std::move(dialer)),
      local_hello_(local),
      peer_hello_(peer),
      peer_description_(link_->describe()),
      chunk_size_(std::min(peer.max_frame_payload, kMaxChunkSize)),
      next_local_id_(options_.role == Role::proxy ? 1 : 2),
      writer_wake_(link_->executor()),
      resumable_((local.capabilities & peer.capabilities & kCapResume) != 0),
      run_done_(link_->executor()),
      ping_timer_(link_->executor()),
      close_timer_(link_->executor()) {
  // A pool buffer must hold the largest frame either side may send.
  pool_ = std::make_unique<detail::BufferPool>(
      std::max<std::size_t>(chunk_size_, local.max_frame_payload), kMaxPooledBuffers);
  // A resumable stream keeps what it sent until the peer acknowledges it, up to a window, and
  // lets it go half a window at a time. Pooling that much keeps a bulk stream from asking
  // malloc (and the kernel, for fresh pages) for a window's worth of buffers every round trip;
  // keep_alive() gives it back once the session is idle.
  if (resumable_) {
    pool_->set_max_free(std::max<std::size_t>(kMaxPooledBuffers,
                                              options_.max_window / pool_->buffer_size()));
  }
}

Session::~Session() = default;

std::string Session::id_text() const { return to_hex(local_hello_.session_id); }

SessionStats Session::stats() const {
  auto s = stats_;
  s.streams_active = streams_.size();
  s.bytes_held = 0;
  for (const auto& [id, stream] : streams_) s.bytes_held += stream->bytes_held();
  s.rtt = std::chrono::duration_cast<std::chrono::microseconds>(srtt_);
  return s;
}

asio::awaitable<error_code> Session::run() {
  using namespace asio::experimental::awaitable_operators;
  auto self = shared_from_this();
  running_ = true;
  ++generation_;
  asio::co_spawn(co_await asio::this_coro::executor, keep_alive(), asio::detached);
  // Both end when the link does: the reader on a read error or a closed link, the writer once
  // the link is lost or, after stop(), once it has delivered the GOAWAY.
  co_await (read_frames() && write_frames());
  running_ = false;
  run_done_.cancel();
  if (!detached()) stop(GoAwayCode::normal, "session ended");
  co_return end_reason_;
}

void Session::attach(std::unique_ptr<Link> link) {
  if (stopped_ || link_up_ || running_) {
    link->close();
    return;
  }
  link_ = std::move(link);
  peer_description_ = link_->describe();
  // The same peer (the same process, holding the same session), so the same limits as the
  // first hello: only its view of the streams is new, and that comes in its RESUME list.
  link_up_ = true;
  resuming_ = true;
  peer_going_away_ = false;
  end_reason_ = {};
  // The list comes first on the new link, before anything else this side sends.
  std::vector<std::uint32_t> ids;
  for (const auto& [id, stream] : streams_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (auto id : ids) {
    auto frame = encode_resume(id, streams_.at(id)->resume_state());
    control_out_.insert(control_out_.end(), frame.view().begin(), frame.view().end());
  }
  auto end = encode_resume(0, ResumeFrame{.last_peer_id = last_peer_id_});
  control_out_.insert(control_out_.end(), end.view().begin(), end.view().end());
}

asio::awaitable<void> Session::take_over_link(std::unique_ptr<Link> link) {
  auto self = shared_from_this();
  while (!stopped_ && (link_up_ || running_)) {
    if (link_up_) lose_link(Error::peer_went_away, "the proxy reconnected on a new link");
    if (!running_) break;
    run_done_.expires_at(Clock::time_point::max());
    co_await run_done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  attach(std::move(link));
}

void Session::open_stream(tcp::socket local, Target target) {
  error_code ec;
  if (target.datagram && !carries_datagrams()) {
    // An older agent would read the OPEN as a TCP connection: never send it one.
    if (!std::exchange(warned_no_datagrams_, true)) {
      spdlog::warn("the agent at {} does not carry UDP (an older lpk-agent): datagrams to {} "
                   "and every other UDP port are dropped; update the agent image",
                   peer_description_, target.to_string());
    }
    local.close(ec);
    return;
  }
  if (!accepting_streams() || streams_.size() >= peer_hello_.max_streams ||
      next_local_id_ > 0xFFFFFFF0u) {
    spdlog::warn("refusing a connection to {}: the tunnel cannot take another stream now",
                 target.to_string());
    local.set_option(asio::socket_base::linger(true, 0), ec);
    local.close(ec);
    return;
  }
  auto id = next_local_id_;
  auto open = encode_open(id, target);
  if (!open) {
    spdlog::warn("refusing a connection to {}: target cannot be encoded", target.to_string());
    local.close(ec);
    return;
  }
  next_local_id_ += 2;
  auto stream = std::make_shared<Stream>(shared_from_this(), id, std::move(target),
                                         std::move(local), true);
  streams_.emplace(id, stream);
  ++stats_.streams_opened;
  // Start the reader first: it runs before the writer wakes, so the client's first bytes
  // (usually already here) leave in the same write as the OPEN.
  stream->start();
  queue_control(*open);
}

void Session::stop(GoAwayCode code, std::string reason) {
  if (stopped_) return;
  stopped_ = true;
  if (!end_reason_) end_reason_ = Error::session_closed;
  auto streams = std::exchange(streams_, {});
  for (auto& [id, stream] : streams) stream->abort();
  for (auto& queued : data_out_) queued.stream.reset();
  data_out_.clear();
  window_updates_.clear();
  control_out_.clear();
  auto goaway = encode_go_away(last_peer_id_, code, reason);
  control_out_.insert(control_out_.end(), goaway.view().begin(), goaway.view().end());
  ping_timer_.cancel();
  // The writer delivers the GOAWAY and closes the link; if the link is stuck, this does.
  close_timer_.expires_after(kGoAwayGrace);
  close_timer_.async_wait([self = shared_from_this()](error_code) { self->link_->close(); });
  wake_writer();
}

void Session::link_failed(error_code why, GoAwayCode code, std::string reason) {
  if (stopped_ || !link_up_) return;
  // A peer that said goodbye is not coming back; nor is one that cannot resume.
  if (!resumable_ || peer_going_away_) return fail(why, code, std::move(reason));
  lose_link(why, reason);
}

void Session::lose_link(error_code why, const std::string& reason) {
  spdlog::warn("tunnel {} to {}: link lost ({}{}{}); keeping its {} streams for a new link "
               "({} bytes held to send again)",
               id_text(), peer_description_, why.message(), reason.empty() ? "" : ": ", reason,
               streams_.size(), stats().bytes_held);
  link_up_ = false;
  resuming_ = false;
  end_reason_ = why;
  ++stats_.links_lost;
  link_->close();
  ping_timer_.cancel();
  // What was queued is either kept by its stream (DATA) or made again after the resume
  // (credit, opens); nothing queued for the dead link is worth sending on the next.
  data_out_.clear();
  window_updates_.clear();
  control_out_.clear();
  pending_pong_.reset();
  outstanding_ping_.reset();
  peer_resume_.clear();
  for (auto& [id, stream] : streams_) stream->on_link_lost();
  wake_writer();
}

void Session::fail(error_code why, GoAwayCode code, std::string reason) {
  if (stopped_) return;
  end_reason_ = why;
  if (why == asio::error::eof || why == asio::error::operation_aborted) {
    spdlog::info("tunnel {} to {} closed by the peer{}{}", id_text(), peer_description_,
                 go_away_reason_.empty() ? "" : ": ", go_away_reason_);
  } else {
    spdlog::warn("tunnel {} to {} ends: {}{}{}", id_text(), peer_description_, why.message(),
                 reason.empty() ? "" : ": ", reason);
  }
  stop(code, std::move(reason));
}

asio::awaitable<void> Session::read_frames() {
  const std::size_t max_frame = kFrameHeaderSize + local_hello_.max_frame_payload;
  std::vector<std::byte> buffer(std::max<std::size_t>(256 * 1024, 2 * max_frame));
  std::size_t begin = 0;
  std::size_t end = 0;
  while (!stopped_ && link_up_) {
    // Keep room for at least one whole frame after the bytes not yet decoded.
    if (buffer.size() - begin < max_frame) {
      std::memmove(buffer.data(), buffer.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    auto [ec, n] = co_await link_->read_some(asio::buffer(buffer.data() + end, buffer.size() - end));
    if (ec) {
      link_failed(ec, GoAwayCode::normal, {});
      co_return;
    }
    if (!link_up_) co_return;  // lost meanwhile (the writer failed, the peer reconnected)
    end += n;
    stats_.bytes_received += n;
    last_heard_ = Clock::now();
    while (!stopped_ && link_up_) {
      auto step = decode_frame(std::span(buffer.data() + begin, end - begin),
                               local_hello_.max_frame_payload);
      if (step.status == DecodeStep::Status::need_more) break;
      if (step.status == DecodeStep::Status::error) {
        fail(step.error, GoAwayCode::protocol_error, step.error.message());
        co_return;
      }
      begin += step.consumed;
      if (!on_frame(step)) co_return;
    }
    if (begin == end) begin = end = 0;
  }
}

bool Session::opened_here(std::uint32_t id) const {
  return (id % 2 == 1) == (options_.role == Role::proxy);
}

bool Session::known_closed(std::uint32_t id) const {
  return opened_here(id) ? id < next_local_id_ : id <= last_peer_id_;
}

bool Session::on_frame(const DecodeStep& step) {
  const auto& h = step.header;
  if (h.type == FrameType::open) return on_open(h.stream_id, std::get<OpenFrame>(step.body));
  if (h.type == FrameType::ping) return on_ping(h, std::get<PingFrame>(step.body));
  if (h.type == FrameType::resume) return on_resume(h.stream_id, std::get<ResumeFrame>(step.body));
  if (h.type == FrameType::go_away) {
    on_go_away(std::get<GoAwayFrame>(step.body));
    return !stopped_;
  }
  auto it = streams_.find(h.stream_id);
  if (it == streams_.end()) {
    if (known_closed(h.stream_id)) return true;  // frames may cross a RESET or a close
    fail(Error::stream_id_misuse, GoAwayCode::protocol_error,
         "frame for stream " + std::to_string(h.stream_id) + " which was never opened");
    return false;
  }
  auto stream = it->second;  // the handlers below may remove it from the map
  switch (h.type) {
    case FrameType::data:
      stream->on_data(step.payload, (h.flags & kFlagFin) != 0);
      break;
    case FrameType::open_result: {
      const bool ours = (h.stream_id % 2 == 1) == (options_.role == Role::proxy);
      if (!ours) {
        fail(Error::stream_id_misuse, GoAwayCode::protocol_error,
             "open result for a stream the peer opened");
        return false;
      }
      stream->on_open_result(std::get<OpenResultFrame>(step.body));
      break;
    }
    case FrameType::window:
      stream->on_window(std::get<WindowFrame>(step.body),
                        resumable_ && (h.flags & kFlagFin) != 0);
      break;
    case FrameType::reset: stream->on_reset(std::get<ResetFrame>(step.body)); break;
    default: break;
  }
  return true;
}

bool Session::on_open(std::uint32_t id, const OpenFrame& open) {
  const bool peer_parity = (id % 2 == 1) == (peer_hello_.role == Role::proxy);
  if (!peer_parity || id <= last_peer_id_) {
    fail(Error::stream_id_misuse, GoAwayCode::protocol_error,
         "open of stream " + std::to_string(id) + " with a used or wrong-parity id");
    return false;
  }
  last_peer_id_ = id;
  if (open.target.datagram && !carries_datagrams()) {
    queue_control(encode_open_result(id, OpenCode::not_permitted, "UDP was not negotiated"));
    return true;
  }
  if (streams_.size() >= options_.max_streams) {
    queue_control(encode_open_result(id, OpenCode::too_many_streams,
                                     std::to_string(options_.max_streams) + " streams open"));
    return true;
  }
  auto stream = std::make_shared<Stream>(shared_from_this(), id, open.target,
                                         tcp::socket(link_->executor()), false);
  streams_.emplace(id, stream);
  ++stats_.streams_opened;
  asio::co_spawn(link_->executor(), dial_for(stream, open.target), asio::detached);
  return true;
}

asio::awaitable<void> Session::dial_for(std::shared_ptr<Stream> stream, Target target) {
  auto self = shared_from_this();
  // (Not a conditional expression: GCC 12 miscompiles co_await inside ?:.)
  DialResult result{OpenCode::not_permitted, "this side accepts no streams", std::nullopt};
  if (dialer_) result = co_await dialer_->dial(target);
  if (stream->closed()) co_return;  // reset or session ended while dialing
  queue_control(encode_open_result(stream->id(), result.code, result.reason));
  if (result.code != OpenCode::ok || !result.socket) {
    spdlog::info("stream {} to {}: {}", stream->id(), target.to_string(),
                 describe(result.code, result.reason));
    stream->close_quietly("dial failed");
    co_return;
  }
  stream->attach(std::move(*result.socket));
}

bool Session::on_ping(const FrameHeader& h, const PingFrame& ping) {
  if ((h.flags & kFlagAck) == 0) {
    pending_pong_ = ping.opaque;  // coalesced: a flood of pings costs one pong
    wake_writer();
    return true;
  }
  // Only the answer to our latest ping counts: an unsolicited pong must not skew the RTT,
  // which sizes the flow-control windows.
  if (!outstanding_ping_ || ping.opaque != *outstanding_ping_) return true;
  outstanding_ping_.reset();
  const auto now = now_ns();
  if (ping.opaque <= now) {
    auto rtt = std::chrono::nanoseconds(now - ping.opaque);
    srtt_ = srtt_.count() == 0 ? Clock::duration(rtt) : (7 * srtt_ + rtt) / 8;
  }
  return true;
}

void Session::on_go_away(const GoAwayFrame& frame) {
  peer_going_away_ = true;
  go_away_code_ = frame.code;
  go_away_reason_ = std::string(to_string(frame.code)) +
                    (frame.reason.empty() ? "" : " (" + frame.reason + ")");
  if (frame.code != GoAwayCode::normal) {
    fail(Error::peer_went_away, GoAwayCode::normal, go_away_reason_);
  }
}

bool Session::on_resume(std::uint32_t id, const ResumeFrame& frame) {
  if (!resuming_) {
    fail(Error::bad_frame, GoAwayCode::protocol_error, "resume list outside a resumed hello");
    return false;
  }
  if (id == 0) {
    finish_resume(frame.last_peer_id);
    return true;
  }
  if (peer_resume_.size() >= std::size_t(options_.max_streams) + peer_hello_.max_streams) {
    fail(Error::too_many_streams, GoAwayCode::protocol_error, "resume list longer than the streams");
    return false;
  }
  peer_resume_[id] = frame;
  return true;
}

// Both sides know now what the other has: each stream sends again from where the peer is,
// opens the peer never saw are sent again, and streams the peer ended meanwhile end here.
void Session::finish_resume(std::uint32_t peer_last_seen) {
  auto listed = std::exchange(peer_resume_, {});
  resuming_ = false;
  std::vector<std::shared_ptr<Stream>> ordered;
  for (const auto& [id, stream] : streams_) ordered.push_back(stream);
  std::sort(ordered.begin(), ordered.end(),
            [](const auto& a, const auto& b) { return a->id() < b->id(); });
  std::uint64_t resumed = 0;
  std::uint64_t ended = 0;
  for (auto& stream : ordered) {
    if (stream->closed()) continue;
    auto it = listed.find(stream->id());
    if (it != listed.end()) {
      stream->resume(it->second);
      ++resumed;
    } else if (opened_here(stream->id()) && stream->id() > peer_last_seen) {
      // The OPEN was lost with the link: open again, and send everything from the start.
      if (auto open = encode_open(stream->id(), stream->target())) queue_control(*open);
      stream->resume(ResumeFrame{});
      ++resumed;
    } else {
      stream->end_unknown_to_peer();
      ++ended;
    }
  }
  ++stats_.resumes;
  stats_.streams_resumed += resumed;
  stats_.streams_ended_while_down += ended;
  spdlog::info("tunnel {} resumed on {}: {} streams carried on, {} ended while the link was down",
               id_text(), peer_description_, resumed, ended);
  wake_writer();
  if (on_resumed) on_resumed();
}

asio::awaitable<void> Session::keep_alive() {
  auto self = shared_from_this();
  const auto generation = generation_;
  const auto timeout = std::max<Clock::duration>(options_.dead_link_timeout,
                                                 std::chrono::milliseconds(30));
  last_heard_ = Clock::now();
  auto bytes_at_last_ping = stats_.bytes_sent + stats_.bytes_received;
  while (!stopped_ && link_up_ && generation == generation_) {
    // Idle since the last ping: the buffers pooled for bulk transfers go back to the system.
    const auto bytes = stats_.bytes_sent + stats_.bytes_received;
    if (bytes - bytes_at_last_ping < kIdleBytesPerPing) pool_->trim(kMaxPooledBuffers);
    bytes_at_last_ping = bytes;
    outstanding_ping_ = now_ns();
    queue_control(encode_ping(*outstanding_ping_, false));
    // Wakes at the next ping, or sooner when the link falls silent before it.
    ping_timer_.expires_at(std::min(Clock::now() + timeout / 3, last_heard_ + timeout));
    auto [ec] = co_await ping_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || stopped_ || !link_up_ || generation != generation_) co_return;
    if (Clock::now() - last_heard_ >= timeout) {
      auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_heard_);
      link_failed(Error::ping_timeout, GoAwayCode::ping_timeout,
                  fmt::format("nothing heard from the peer for {:.1f} s", silent.count() / 1000.0));
      co_return;
    }
  }
}

void Session::queue_control(const EncodedFrame& frame) {
  if (stopped_ || !link_up_) return;  // a resume makes again what matters
  if (control_out_.size() + frame.size > kMaxQueuedControl) {
    fail(Error::too_many_streams, GoAwayCode::protocol_error,
         "the peer makes this side queue too many control frames");
    return;
  }
  control_out_.insert(control_out_.end(), frame.view().begin(), frame.view().end());
  wake_writer();
}

bool Session::queue_data(std::shared_ptr<Stream> stream, const std::byte* data,
                         std::size_t size, bool fin, std::uint64_t end) {
  if (!sending()) return false;
  auto header = encode_data_header(stream->id(), std::uint32_t(size), fin);
  data_out_.push_back({std::move(stream), data, size, end, header});
  wake_writer();
  return true;
}

void Session::count_retransmitted(std::size_t n) { stats_.bytes_retransmitted += n; }

void Session::queue_window_update(std::shared_ptr<Stream> stream) {
  if (!sending() || stream->window_update_queued) return;
  stream->window_update_queued = true;
  window_updates_.push_back(std::move(stream));
  wake_writer();
}

void Session::forget(std::uint32_t id) { streams_.erase(id); }

void Session::wake_writer() {
  if (writer_waiting_) writer_wake_.cancel();
}

// Encodes what is coalesced (window updates, the pong) into the control buffer.
void Session::flush_coalesced() {
  for (auto& stream : window_updates_) {
    stream->window_update_queued = false;
    if (stream->closed()) continue;
    auto frame = encode_window(stream->id(), stream->window_frame());
    control_out_.insert(control_out_.end(), frame.view().begin(), frame.view().end());
  }
  window_updates_.clear();
  if (pending_pong_) {
    auto pong = encode_ping(*pending_pong_, true);
    control_out_.insert(control_out_.end(), pong.view().begin(), pong.view().end());
    pending_pong_.reset();
  }
}

asio::awaitable<void> Session::write_frames() {
  auto self = shared_from_this();
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(2 * kMaxChunksPerWrite + 1);
  std::vector<QueuedData> in_flight;
  in_flight.reserve(kMaxChunksPerWrite);
  std::vector<std::byte> control;
  const auto generation = generation_;
  for (;;) {
    if (!link_up_ || generation != generation_) co_return;  // lost: nothing to close or flush
    if (!stopped_) flush_coalesced();
    if (control_out_.empty() && data_out_.empty()) {
      if (stopped_) break;
      writer_waiting_ = true;
      writer_wake_.expires_at(Clock::time_point::max());
      co_await writer_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
      writer_waiting_ = false;
      continue;
    }
    control.swap(control_out_);
    control_out_.clear();
    buffers.clear();
    // Control first: credit and pongs must not wait behind bulk data.
    if (!control.empty()) buffers.push_back(asio::buffer(control));
    std::size_t batch = 0;
    while (!data_out_.empty() && in_flight.size() < kMaxChunksPerWrite &&
           batch < kMaxBytesPerWrite) {
      auto queued = std::move(data_out_.front());
      data_out_.pop_front();
      if (queued.stream->was_reset()) {
        queued.stream->on_chunk_written(queued.end);
        continue;
      }
      auto& q = in_flight.emplace_back(std::move(queued));
      buffers.push_back(asio::buffer(q.header));
      if (q.size > 0) buffers.push_back(asio::buffer(q.data, q.size));
      batch += q.size;
    }
    if (buffers.empty()) continue;
    auto [ec, n] = co_await link_->write(buffers);
    control.clear();
    if (!link_up_ || generation != generation_) {
      // The link was lost during the write: the streams have forgotten what was queued, and
      // will send it again from where the peer says it is.
      in_flight.clear();
      co_return;
    }
    for (auto& q : in_flight) q.stream->on_chunk_written(q.end);
    in_flight.clear();
    if (ec) {
      link_failed(ec, GoAwayCode::normal, {});
      co_return;
    }
    stats_.bytes_sent += n;
  }
  link_->close();
}

}  // namespace lpk::tunnel
