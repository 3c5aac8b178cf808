#pragma once
// One multiplexed tunnel over one Link: many TCP streams in both directions, each with its own
// credit, so a stalled reader stops only its own stream.
//
// Threading: a session and its streams live on one single-threaded io_context; nothing locks.
// Lifetime: create with establish(), then co_await run(); run() returns when the session ends.
// stop() may be called at any time, any number of times.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/tunnel/codec.hpp"
#include "proxy/tunnel/flow_control.hpp"
#include "proxy/tunnel/handshake.hpp"
#include "proxy/tunnel/link.hpp"
#include "proxy/tunnel/protocol.hpp"

namespace lpk::tunnel {

namespace detail {
class Stream;
class BufferPool;
}  // namespace detail

struct SessionOptions {
  Role role = Role::proxy;
  std::uint32_t max_frame_payload = 64 * 1024;
  std::uint32_t max_streams = 16384;          // streams the peer may have open toward us
  std::uint32_t initial_window = 256 * 1024;  // per stream, before any autotuning
  std::uint32_t max_window = 16 * 1024 * 1024;
  std::string secret;                          // empty: no authentication
  // A link that brings nothing for this long is dead (a frozen port-forward, a stopped agent,
  // a black-holed route: no FIN, no RST) and the session ends with `ping timeout`. Each side
  // pings every third of it, so a live link is never silent that long; any byte counts, so a
  // link busy with bulk data is never cut for a pong that waits behind it.
  std::chrono::milliseconds dead_link_timeout{15'000};
  std::chrono::milliseconds handshake_timeout{10'000};
  // Announce the `resume` capability: when both ends do, a lost link leaves the streams open,
  // each side keeps what the other may not have, and a new link with the same session id
  // carries them on (docs/protocol.md §6).
  bool resume = true;
  // How long a side keeps a session whose link is lost (its streams, the sockets it dialed)
  // waiting for a new link; then the streams are reset.
  std::chrono::milliseconds resume_grace{60'000};
  // Announce the `datagram` capability: this side understands UDP flows (datagram streams,
  // docs/protocol.md §8). Off only to stand in for an older peer in tests.
  bool datagram = true;
};

/// Result of dialing the target of a stream the peer opened.
struct DialResult {
  OpenCode code = OpenCode::internal;
  std::string reason;
  std::optional<boost::asio::ip::tcp::socket> socket;  // set when code == ok
};

/// The seam for streams the peer opens: the agent dials cluster targets, the proxy connects
/// inbound streams to the developer's local port.
class Dialer {
 public:
  virtual ~Dialer() = default;
  virtual boost::asio::awaitable<DialResult> dial(const Target& target) = 0;
};

struct SessionStats {
  std::uint64_t streams_opened = 0;     // by either side
  std::uint64_t streams_active = 0;
  std::uint64_t bytes_sent = 0;         // link bytes, headers included
  std::uint64_t bytes_received = 0;
  std::chrono::microseconds rtt{0};     // smoothed ping round trip
  std::uint64_t links_lost = 0;         // links that failed under a resumable session
  std::uint64_t resumes = 0;            // new links that carried the streams on
  std::uint64_t streams_resumed = 0;    // streams carried across a lost link
  std::uint64_t streams_ended_while_down = 0;  // streams the far side ended meanwhile
  std::uint64_t bytes_retransmitted = 0;       // payload sent again after a resume
  std::uint64_t bytes_held = 0;         // sent payload kept until the peer has it (now)
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  /// Runs the hello exchange over `link` (bounded by options.handshake_timeout). On the proxy
  /// side `id` is the session id to propose; the agent takes the proxy's.
  static boost::asio::awaitable<boost::system::result<std::shared_ptr<Session>>> establish(
      std::unique_ptr<Link> link, SessionOptions options, std::shared_ptr<Dialer> dialer,
      SessionId id = random_session_id());

  /// The hello exchange alone (bounded by options.handshake_timeout), for a side that decides
  /// from the peer's hello whether the link resumes a session it holds. Proxy: `resume` asks the
  /// agent to resume session `id`. Agent: `holds(peer)` says whether it holds the session the
  /// proxy asks to resume; the answer's `resume` flag tells the proxy.
  static boost::asio::awaitable<boost::system::result<HandshakeResult>> exchange_hellos(
      Link& link, const SessionOptions& options, SessionId id, bool resume,
      const std::function<bool(const Hello& peer)>& holds = {});

  Session(std::unique_ptr<Link> link, SessionOptions options, std::shared_ptr<Dialer> dialer,
          const Hello& local, const Hello& peer);
  ~Session();

  /// Reads, writes and pings until the link fails or stop() is called; returns why it ended.
  /// In a resumable session a failed link leaves the session detached() rather than stopped:
  /// its streams wait for attach() (or take_over_link()) and another run().
  boost::asio::awaitable<boost::system::error_code> run();

  /// Gives a detached session the new link of a resumed hello; run() then starts by listing
  /// the streams to the peer, and sends again what the peer did not get.
  void attach(std::unique_ptr<Link> link);
  /// attach() for a session whose old link may still look alive (the agent learns of a lost
  /// link when the proxy reconnects): drops the old link and waits for its run() to return.
  boost::asio::awaitable<void> take_over_link(std::unique_ptr<Link> link);
  /// Called when a resumed link carries the streams again (new streams may be opened).
  std::function<void()> on_resumed;

  /// Carries `local` (an accepted connection) to `target` on the far side. The first bytes
  /// travel with the open, without waiting for the far side's answer. If the session cannot
  /// take another stream the connection is closed at once.
  void open_stream(boost::asio::ip::tcp::socket local, Target target);

  /// Ends the session: tells the peer why (best effort), closes the link and every stream.
  void stop(GoAwayCode code = GoAwayCode::normal, std::string reason = {});

  bool stopped() const { return stopped_; }
  /// The link is lost and the session waits for another (resumable sessions only).
  bool detached() const { return !stopped_ && !link_up_; }
  bool resumable() const { return resumable_; }
  /// Both ends announced kCapDatagram: UDP flows may be opened on this session.
  bool carries_datagrams() const {
    return (local_hello_.capabilities & peer_hello_.capabilities & kCapDatagram) != 0;
  }
  /// Counts links: changes at every run(), so a timer set for one detachment can tell.
  std::uint64_t link_generation() const { return generation_; }
  bool accepting_streams() const {
    return !stopped_ && !peer_going_away_ && link_up_ && !resuming_;
  }
  SessionStats stats() const;
  const SessionId& id() const { return local_hello_.session_id; }
  std::string id_text() const;
  const std::string& peer_description() const { return peer_description_; }
  /// Why the peer said it was leaving (empty if it did not).
  const std::string& go_away_reason() const { return go_away_reason_; }
  std::optional<GoAwayCode> go_away_code() const { return go_away_code_; }

 private:
  friend class detail::Stream;

  boost::asio::awaitable<void> read_frames();
  boost::asio::awaitable<void> write_frames();
  boost::asio::awaitable<void> keep_alive();
  boost::asio::awaitable<void> dial_for(std::shared_ptr<detail::Stream> stream, Target target);

  // Frame dispatch; a false return means the peer broke the protocol (session ends).
  bool on_frame(const DecodeStep& step);
  bool on_open(std::uint32_t id, const OpenFrame& open);
  bool on_ping(const FrameHeader& h, const PingFrame& ping);
  void on_go_away(const GoAwayFrame& frame);
  bool on_resume(std::uint32_t id, const ResumeFrame& frame);
  void finish_resume(std::uint32_t peer_last_seen);
  bool known_closed(std::uint32_t id) const;
  bool opened_here(std::uint32_t id) const;
  void fail(boost::system::error_code why, GoAwayCode code, std::string reason);
  /// The link broke (read or write error, silence): detach if resumable, else fail().
  void link_failed(boost::system::error_code why, GoAwayCode code, std::string reason);
  void lose_link(boost::system::error_code why, const std::string& reason);
  bool sending() const { return !stopped_ && link_up_ && !resuming_; }

  // Called by streams.
  void queue_control(const EncodedFrame& frame);
  /// Queues `size` bytes at `data` (owned by the stream, kept until written) ending at stream
  /// offset `end`. False while the session cannot send (link lost, resume under way): the
  /// stream keeps the bytes and sends them when the link resumes.
  bool queue_data(std::shared_ptr<detail::Stream> stream, const std::byte* data,
                  std::size_t size, bool fin, std::uint64_t end);
  void count_retransmitted(std::size_t n);
  void queue_window_update(std::shared_ptr<detail::Stream> stream);
  void forget(std::uint32_t id);
  void wake_writer();
  void flush_coalesced();
  Clock::duration srtt() const { return srtt_; }
  detail::BufferPool& pool() { return *pool_; }
  std::uint32_t chunk_size() const { return chunk_size_; }

  struct QueuedData {
    std::shared_ptr<detail::Stream> stream;
    const std::byte* data;
    std::size_t size;
    std::uint64_t end;
    std::array<std::byte, kFrameHeaderSize> header;
  };

  std::unique_ptr<Link> link_;
  SessionOptions options_;
  std::shared_ptr<Dialer> dialer_;
  Hello local_hello_;
  Hello peer_hello_;
  std::string peer_description_;
  std::unique_ptr<detail::BufferPool> pool_;
  std::uint32_t chunk_size_;  // largest DATA payload we send: the peer's maximum, capped

  std::unordered_map<std::uint32_t, std::shared_ptr<detail::Stream>> streams_;
  std::uint32_t next_local_id_;
  std::uint32_t last_peer_id_ = 0;

  // Writer state. Control frames are appended to one byte buffer (bounded: a peer that makes
  // us queue more than kMaxQueuedControl bytes is cut off); DATA chunks queue at most two per
  // stream; window updates are coalesced per stream and encoded when written.
  std::vector<std::byte> control_out_;
  std::deque<QueuedData> data_out_;
  std::vector<std::shared_ptr<detail::Stream>> window_updates_;
  std::optional<std::uint64_t> pending_pong_;
  boost::asio::steady_timer writer_wake_;
  bool writer_waiting_ = false;

  // Resumption. `link_up_` is false from a lost link to the next attach(); `resuming_` from
  // attach() to the peer's end of list, while each side learns what the other has.
  bool resumable_ = false;
  bool link_up_ = true;
  bool resuming_ = false;
  bool running_ = false;
  std::uint64_t generation_ = 0;
  std::unordered_map<std::uint32_t, ResumeFrame> peer_resume_;
  boost::asio::steady_timer run_done_;  // cancelled when run() returns

  boost::asio::steady_timer ping_timer_;
  boost::asio::steady_timer close_timer_;
  Clock::time_point last_heard_;  // the last time the link brought any byte
  std::optional<std::uint64_t> outstanding_ping_;  // opaque of the ping awaiting its pong
  Clock::duration srtt_{};
  bool stopped_ = false;
  bool peer_going_away_ = false;
  bool warned_no_datagrams_ = false;
  std::string go_away_reason_;
  std::optional<GoAwayCode> go_away_code_;
  boost::system::error_code end_reason_;
  SessionStats stats_;
};

}  // namespace lpk::tunnel
