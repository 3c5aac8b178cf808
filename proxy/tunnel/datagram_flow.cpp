#include "proxy/tunnel/datagram_flow.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <utility>
#include <variant>

#include "proxy/tunnel/datagram.hpp"
#include "proxy/tunnel/dial.hpp"
#include "proxy/tunnel/loopback_pair.hpp"

namespace lpk::tunnel {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kFirstReadBuffer = 16 * 1024;
constexpr std::size_t kMaxRecord = kRecordHeaderSize + kMaxDatagramSize;
constexpr std::size_t kMaxGather = 64;  // records per write

}  // namespace

std::size_t receive_burst(udp::socket& socket, std::span<std::byte> buffer,
                          const std::function<void(const udp::endpoint&, std::size_t)>& each) {
  udp::endpoint source;
  std::size_t received = 0;
  for (; received < kMaxBurst; ++received) {
    error_code ec;
    const auto n = socket.receive_from(asio::buffer(buffer.data(), buffer.size()), source, 0, ec);
    // Would block: the burst is over. Other errors (an ICMP error for a datagram sent earlier)
    // end it too; the socket goes on.
    if (ec) break;
    each(source, n);
  }
  return received;
}

namespace {

}  // namespace

DatagramFlow::DatagramFlow(tcp::socket stream_end, SendOut send_out, DatagramFlowOptions options)
    : stream_(std::move(stream_end)),
      send_out_(std::move(send_out)),
      options_(options),
      wake_(stream_.get_executor()),
      idle_(stream_.get_executor()),
      last_active_(Clock::now()) {}

void DatagramFlow::push(std::span<const std::byte> datagram) {
  const auto record = kRecordHeaderSize + datagram.size();
  if (stopped_ || datagram.size() > kMaxDatagramSize ||
      queued_bytes_ + record > options_.queue_bytes) {
    ++stats_.dropped;
    return;
  }
  const auto header = encode_record_header(datagram.size());
  std::vector<std::byte> entry(record);
  std::memcpy(entry.data(), header.data(), header.size());
  if (!datagram.empty()) std::memcpy(entry.data() + header.size(), datagram.data(), datagram.size());
  queue_.push_back(std::move(entry));
  queued_bytes_ += record;
  ++stats_.to_stream;
  last_active_ = Clock::now();
  if (std::exchange(writer_waiting_, false)) wake_.cancel();
}

asio::awaitable<void> DatagramFlow::run() {
  using namespace asio::experimental::awaitable_operators;
  auto self = shared_from_this();
  co_await (read_records() || write_queue() || watch_idle());
  close_stream();
}

void DatagramFlow::stop() {
  if (std::exchange(stopped_, true)) return;
  close_stream();
  wake_.cancel();
  idle_.cancel();
}

void DatagramFlow::close_stream() {
  error_code ec;
  // A malformed record resets the stream (RST), as a protocol error on a TCP stream does; any
  // other ending closes it in order, so the far side's flow ends too.
  if (malformed_) stream_.set_option(asio::socket_base::linger(true, 0), ec);
  stream_.close(ec);
}

asio::awaitable<void> DatagramFlow::read_records() {
  in_.resize(kFirstReadBuffer);
  while (!stopped_) {
    // Only a partial record fills the buffer: grow it to the largest record, never beyond.
    if (in_used_ == in_.size()) in_.resize(kMaxRecord);
    auto [ec, n] = co_await stream_.async_read_some(
        asio::buffer(in_.data() + in_used_, in_.size() - in_used_), kTuple);
    if (ec) co_return;  // the far side ended the flow (FIN or RST), or stop()
    in_used_ += n;
    last_active_ = Clock::now();
    if (!deliver_records()) {
      malformed_ = true;
      spdlog::warn("UDP flow: a malformed datagram record; the flow is reset");
      co_return;
    }
  }
}

bool DatagramFlow::deliver_records() {
  std::size_t offset = 0;
  for (;;) {
    auto step = decode_record(std::span(in_.data() + offset, in_used_ - offset));
    if (step.status == RecordStep::Status::malformed) return false;
    if (step.status == RecordStep::Status::need_more) break;
    ++stats_.from_stream;
    if (!send_out_(step.datagram)) ++stats_.dropped;
    offset += step.consumed;
  }
  if (offset > 0) {
    std::memmove(in_.data(), in_.data() + offset, in_used_ - offset);
    in_used_ -= offset;
  }
  return true;
}

asio::awaitable<void> DatagramFlow::write_queue() {
  std::vector<asio::const_buffer> gather;
  while (!stopped_) {
    if (queue_.empty()) {
      writer_waiting_ = true;
      wake_.expires_at(Clock::time_point::max());
      co_await wake_.async_wait(kTuple);
      // push() clears the flag before it wakes us; still set, the wait was cancelled: the
      // flow is ending.
      if (std::exchange(writer_waiting_, false)) co_return;
      continue;
    }
    gather.clear();
    for (std::size_t i = 0; i < queue_.size() && i < kMaxGather; ++i) {
      gather.push_back(asio::buffer(queue_[i]));
    }
    // Entries pushed meanwhile go to the deque's end: the buffers written stay where they are.
    auto [ec, n] = co_await asio::async_write(stream_, gather, kTuple);
    if (ec) co_return;
    for (std::size_t i = 0; i < gather.size(); ++i) {
      queued_bytes_ -= queue_.front().size();
      queue_.pop_front();
    }
  }
}

asio::awaitable<void> DatagramFlow::watch_idle() {
  while (!stopped_) {
    const auto deadline = last_active_ + options_.idle_timeout;
    if (Clock::now() >= deadline) co_return;
    idle_.expires_at(deadline);
    auto [ec] = co_await idle_.async_wait(kTuple);
    if (ec) co_return;  // the flow is ending for another reason
  }
}

DatagramFlowTable::DatagramFlowTable(asio::any_io_executor executor, OpenFlow open,
                                     SendTo send_to, DatagramFlowOptions options)
    : executor_(std::move(executor)),
      open_(std::move(open)),
      send_to_(std::move(send_to)),
      options_(options) {}

void DatagramFlowTable::deliver(const udp::endpoint& source,
                                std::span<const std::byte> datagram) {
  if (stopped_) return;
  auto it = flows_.find(source);
  if (it == flows_.end()) {
    auto end = open_();
    if (!end) {
      ++dropped_by_ended_;
      return;
    }
    auto flow = std::make_shared<DatagramFlow>(
        std::move(*end),
        [send_to = send_to_, source](std::span<const std::byte> d) { return send_to(source, d); },
        options_);
    it = flows_.emplace(source, flow).first;
    asio::co_spawn(executor_, run_flow(source, flow), asio::detached);
  }
  it->second->push(datagram);
}

asio::awaitable<void> DatagramFlowTable::run_flow(udp::endpoint source,
                                                  std::shared_ptr<DatagramFlow> flow) {
  auto self = shared_from_this();
  co_await flow->run();
  const auto& stats = flow->stats();
  spdlog::debug("UDP flow from {}:{} ended: {} datagrams out, {} back, {} dropped",
                source.address().to_string(), source.port(), stats.to_stream, stats.from_stream,
                stats.dropped);
  dropped_by_ended_ += stats.dropped;
  auto it = flows_.find(source);
  if (it != flows_.end() && it->second == flow) flows_.erase(it);
}

void DatagramFlowTable::stop() {
  stopped_ = true;
  for (auto& [source, flow] : flows_) flow->stop();
}

std::uint64_t DatagramFlowTable::dropped() const {
  auto total = dropped_by_ended_;
  for (const auto& [source, flow] : flows_) total += flow->stats().dropped;
  return total;
}

namespace {

// A connected UDP socket's datagrams into the flow, until the flow ends.
asio::awaitable<void> receive_into(udp::socket& socket, DatagramFlow& flow) {
  std::vector<std::byte> buffer(kMaxDatagramSize + 1);
  for (;;) {
    auto [ec] = co_await socket.async_wait(udp::socket::wait_read, kTuple);
    if (ec) co_return;
    // Everything that is there, before the writer runs: one write to the stream then carries
    // the whole burst.
    for (std::size_t i = 0; i < kMaxBurst; ++i) {
      const auto n = socket.receive(asio::buffer(buffer), 0, ec);
      // A connected UDP socket reports here an ICMP port unreachable for an earlier datagram;
      // the flow goes on, as the application's own socket would.
      if (ec == asio::error::connection_refused) continue;
      if (ec) break;
      flow.push(std::span(buffer.data(), n));
    }
    if (ec && ec != asio::error::would_block && ec != asio::error::connection_refused) co_return;
  }
}

asio::awaitable<void> relay_connected(std::shared_ptr<udp::socket> socket,
                                      std::shared_ptr<DatagramFlow> flow) {
  using namespace asio::experimental::awaitable_operators;
  co_await (flow->run() || receive_into(*socket, *flow));
  flow->stop();
  error_code ec;
  socket->close(ec);
}

using Resolved = std::variant<udp::endpoint, DialResult>;

asio::awaitable<Resolved> resolve_udp(const Target& target, std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  if (target.kind == Target::Kind::inbound) {
    co_return DialResult{OpenCode::not_permitted, "inbound flows are not dialed here", {}};
  }
  error_code ec;
  auto address = asio::ip::make_address(target.host, ec);
  if (!ec) co_return udp::endpoint(address, target.port);
  auto ex = co_await asio::this_coro::executor;
  udp::resolver resolver(ex);
  asio::steady_timer deadline(ex, timeout);
  auto outcome = co_await (resolver.async_resolve(target.host, std::to_string(target.port),
                                                  kTuple) ||
                           deadline.async_wait(kTuple));
  if (outcome.index() == 1) {
    co_return DialResult{OpenCode::timed_out, "name lookup took too long", {}};
  }
  auto [rec, results] = std::get<0>(outcome);
  if (rec) co_return DialResult{open_code_for(rec), rec.message(), {}};
  if (results.empty()) co_return DialResult{OpenCode::name_not_found, target.host, {}};
  co_return results.begin()->endpoint();
}

}  // namespace

asio::awaitable<DialResult> dial_udp(const Target& target, std::chrono::milliseconds timeout,
                                     DatagramFlowOptions options) {
  auto resolved = co_await resolve_udp(target, timeout);
  if (auto* failed = std::get_if<DialResult>(&resolved)) co_return std::move(*failed);
  const auto endpoint = std::get<udp::endpoint>(resolved);
  auto ex = co_await asio::this_coro::executor;
  auto socket = std::make_shared<udp::socket>(ex);
  error_code ec;
  socket->open(endpoint.protocol(), ec);
  if (!ec) socket->connect(endpoint, ec);
  if (!ec) socket->non_blocking(true, ec);
  if (ec) co_return DialResult{open_code_for(ec), ec.message(), {}};
  enlarge_receive_buffer(*socket);
  auto pair = loopback_pair(ex);
  if (!pair) co_return DialResult{OpenCode::internal, pair.error().message(), {}};
  auto send = [socket](std::span<const std::byte> d) {
    error_code send_ec;
    socket->send(asio::buffer(d.data(), d.size()), 0, send_ec);
    return !send_ec;
  };
  auto flow = std::make_shared<DatagramFlow>(std::move((*pair)[1]), send, options);
  asio::co_spawn(ex, relay_connected(socket, flow), asio::detached);
  co_return DialResult{OpenCode::ok, {}, std::move((*pair)[0])};
}

void enlarge_receive_buffer(udp::socket& socket) {
  constexpr int kBytes = 4 << 20;
  // SO_RCVBUFFORCE passes net.core.rmem_max where the process may (CAP_NET_ADMIN); else the
  // plain option takes what the limit allows.
  if (::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVBUFFORCE, &kBytes, sizeof kBytes) != 0) {
    error_code ec;
    socket.set_option(asio::socket_base::receive_buffer_size(kBytes), ec);
  }
}

}  // namespace lpk::tunnel
