#pragma once
// UDP over the tunnel (docs/protocol.md §8). A flow is one UDP conversation (one local source
// address:port on the proxy, one connected socket on the agent) carried by one tunnel stream as
// records (datagram.hpp). Both ends meet the stream through a loopback TCP pair, as the agent
// services do: the session's streams, credit and resumption serve UDP unchanged, and this file
// only turns datagrams into records and back.
//
// Threading: one io_context, no locks. Lifetime: hold the shared_ptr; run() ends when the
// stream ends, a record is malformed, the flow is idle for idle_timeout, or stop() is called.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "proxy/tunnel/session.hpp"

namespace lpk::tunnel {

struct DatagramFlowOptions {
  // Datagrams (record headers included) waiting for the stream's credit. Beyond it new
  // datagrams are dropped and counted: UDP senders expect loss, never a sender that blocks.
  std::size_t queue_bytes = 256 * 1024;
  // A flow with no datagram either way for this long ends, as conntrack forgets a UDP flow
  // (nf_conntrack_udp_timeout_stream is 120 s, the unreplied timeout 30 s).
  std::chrono::milliseconds idle_timeout{60'000};
};

struct DatagramFlowStats {
  std::uint64_t to_stream = 0;    // datagrams queued toward the tunnel
  std::uint64_t from_stream = 0;  // datagrams the tunnel brought
  std::uint64_t dropped = 0;      // queue full, or the UDP socket did not take them
};

class DatagramFlow : public std::enable_shared_from_this<DatagramFlow> {
 public:
  /// Sends one datagram out of the UDP side; false when it was dropped.
  using SendOut = std::function<bool(std::span<const std::byte>)>;

  /// `stream_end` is our end of the loopback pair whose other end rides the stream.
  DatagramFlow(boost::asio::ip::tcp::socket stream_end, SendOut send_out,
               DatagramFlowOptions options);

  /// Queues a datagram for the stream, or drops it (counted) when the queue is full or the
  /// datagram longer than kMaxDatagramSize.
  void push(std::span<const std::byte> datagram);
  /// Relays until the flow ends (see the file comment); a malformed record resets the stream.
  boost::asio::awaitable<void> run();
  /// Idempotent: closes the stream end, which ends run().
  void stop();

  const DatagramFlowStats& stats() const { return stats_; }
  bool malformed() const { return malformed_; }
  std::size_t queued_bytes() const { return queued_bytes_; }

 private:
  boost::asio::awaitable<void> read_records();
  boost::asio::awaitable<void> write_queue();
  boost::asio::awaitable<void> watch_idle();
  /// Sends every whole record at the start of the input buffer; false on a malformed one.
  bool deliver_records();
  void close_stream();

  boost::asio::ip::tcp::socket stream_;
  SendOut send_out_;
  DatagramFlowOptions options_;
  std::deque<std::vector<std::byte>> queue_;  // each entry: record header and datagram
  std::size_t queued_bytes_ = 0;
  boost::asio::steady_timer wake_;
  boost::asio::steady_timer idle_;
  std::chrono::steady_clock::time_point last_active_;
  std::vector<std::byte> in_;  // grows to one record's largest size only when one needs it
  std::size_t in_used_ = 0;
  bool writer_waiting_ = false;
  bool stopped_ = false;
  bool malformed_ = false;
  DatagramFlowStats stats_;
};

/// The proxy's flows of one UDP listener, one per local source address:port. A datagram from
/// a new source opens a stream (through `open`) and a flow; replies go back to that source.
class DatagramFlowTable : public std::enable_shared_from_this<DatagramFlowTable> {
 public:
  /// Opens a stream to the listener's target; returns our end of it (nullopt: drop).
  using OpenFlow = std::function<std::optional<boost::asio::ip::tcp::socket>()>;
  using SendTo = std::function<bool(const boost::asio::ip::udp::endpoint& to,
                                    std::span<const std::byte> datagram)>;

  DatagramFlowTable(boost::asio::any_io_executor executor, OpenFlow open, SendTo send_to,
                    DatagramFlowOptions options = {});

  /// Hands a datagram from `source` to its flow, opening one for a new source.
  void deliver(const boost::asio::ip::udp::endpoint& source, std::span<const std::byte> datagram);
  /// Ends every flow (idempotent); later datagrams are dropped.
  void stop();

  std::size_t size() const { return flows_.size(); }
  /// Datagrams dropped by every flow so far, ended ones included.
  std::uint64_t dropped() const;

 private:
  boost::asio::awaitable<void> run_flow(boost::asio::ip::udp::endpoint source,
                                        std::shared_ptr<DatagramFlow> flow);

  boost::asio::any_io_executor executor_;
  OpenFlow open_;
  SendTo send_to_;
  DatagramFlowOptions options_;
  std::map<boost::asio::ip::udp::endpoint, std::shared_ptr<DatagramFlow>> flows_;
  std::uint64_t dropped_by_ended_ = 0;
  bool stopped_ = false;
};

/// The agent's side: resolves `target` (UDP), connects a UDP socket to it and starts a flow
/// between that socket and a new loopback pair; the DialResult carries the pair's other end,
/// for the stream. Fails like a TCP dial (name not found, timed out).
boost::asio::awaitable<DialResult> dial_udp(const Target& target,
                                            std::chrono::milliseconds timeout,
                                            DatagramFlowOptions options = {});

/// Datagrams read from a UDP socket before the flows' writers run, so that one write to each
/// stream carries a whole burst.
inline constexpr std::size_t kMaxBurst = 64;

/// Reads what a non-blocking UDP socket holds, up to kMaxBurst datagrams, calling `each(source,
/// size)` with the datagram in `buffer`; returns how many were read.
std::size_t receive_burst(
    boost::asio::ip::udp::socket& socket, std::span<std::byte> buffer,
    const std::function<void(const boost::asio::ip::udp::endpoint&, std::size_t)>& each);

/// Best effort: a receive buffer big enough for a burst of datagrams (capped by the system's
/// net.core.rmem_max; as root, beyond it).
void enlarge_receive_buffer(boost::asio::ip::udp::socket& socket);

}  // namespace lpk::tunnel
