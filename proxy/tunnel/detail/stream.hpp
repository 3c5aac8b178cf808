#pragma once
// One TCP connection carried by a session: local socket <-> DATA frames, with credit in each
// direction. Internal to the session.
//
// Upstream (socket -> tunnel): a coroutine reads only when the peer has granted credit and at
// most kMaxQueuedChunks chunks wait in the session writer; an idle stream holds no buffer
// (it waits for readability, not in a read). Downstream (tunnel -> socket): DATA is written
// straight to the socket when it can take it, the rest is buffered (never more than the
// window granted) and written by completion handlers.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <span>
#include <vector>

#include "proxy/tunnel/flow_control.hpp"
#include "proxy/tunnel/protocol.hpp"
#include "proxy/tunnel/send_buffer.hpp"

namespace lpk::tunnel {
class Session;
}

namespace lpk::tunnel::detail {

class Stream : public std::enable_shared_from_this<Stream> {
 public:
  static constexpr int kMaxQueuedChunks = 2;

  /// `socket` is the local connection for a stream this side opened; a stream the peer opened
  /// gets its socket from attach() once the dial succeeds.
  Stream(std::shared_ptr<Session> session, std::uint32_t id, Target target,
         boost::asio::ip::tcp::socket socket, bool connected);

  std::uint32_t id() const { return id_; }
  const Target& target() const { return target_; }
  bool closed() const { return closed_; }
  bool was_reset() const { return reset_; }

  /// Starts relaying the local socket (the opener calls it right after queueing OPEN).
  void start();
  /// Acceptor side: the dial succeeded; flush what arrived meanwhile and start relaying.
  void attach(boost::asio::ip::tcp::socket socket);

  // Frames from the peer.
  void on_data(std::span<const std::byte> payload, bool fin);
  /// `fin_delivered`: the WINDOW carried the FIN flag of a resumable session.
  void on_window(const WindowFrame& window, bool fin_delivered);
  void on_open_result(const OpenResultFrame& result);
  void on_reset(const ResetFrame& reset);

  // From the session writer: the chunk ending at stream offset `end` is on the link.
  void on_chunk_written(std::uint64_t end);
  WindowFrame window_frame() const { return receive_.current(); }
  bool window_update_queued = false;

  // Resumption (docs/protocol.md §6).
  /// What this side has of the peer's bytes, for the list after a resumed hello.
  ResumeFrame resume_state() const;
  /// The link is lost: nothing is queued on it any more.
  void on_link_lost();
  /// The peer has what `peer` says: send again what it lacks, and credit anew.
  void resume(const ResumeFrame& peer);
  /// The peer ended this stream while the link was down (it is not in its list).
  void end_unknown_to_peer();
  /// Bytes read from the local socket and kept until the peer has them.
  std::size_t bytes_held() const { return outbox_.bytes_held(); }

  /// Session teardown: close the socket abortively, send nothing.
  void abort();
  /// The far side refused the stream, or a local problem: closes without a RESET frame.
  void close_quietly(const char* why);

 private:
  boost::asio::awaitable<void> pump_local();
  boost::system::error_code read_into_outbox(bool& drained);
  void wake();
  void deliver(std::span<const std::byte> bytes);
  void start_local_write();
  void on_local_written(boost::system::error_code ec, std::size_t n);
  void consumed(std::size_t n);
  void send_fin();
  void queue_chunk(const std::byte* data, std::size_t size, std::uint64_t end, bool fin);
  void release_sent();
  /// Gives the outbox's chunks wholly below `offset` back to the pool.
  void let_go_below(std::uint64_t offset);
  void reset(ResetCode code, std::string reason);
  void fail_local(boost::system::error_code ec);
  void maybe_finish();
  void finish(const char* how, bool abortive);
  void release(bool abortive);

  struct Pending {
    std::unique_ptr<std::byte[]> buffer;
    std::size_t begin;
    std::size_t end;
  };

  std::shared_ptr<Session> session_;
  std::uint32_t id_;
  Target target_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer wake_;
  SendCredit send_;
  ReceiveWindow receive_;
  std::vector<Pending> pending_;  // downstream bytes the socket has not taken yet
  // Upstream bytes read from the socket: until written to the link, or in a resumable session
  // until the peer has them. Freed with the stream, never earlier: the writer may be sending
  // from it when the stream ends.
  SendBuffer outbox_;
  std::uint64_t written_ = 0;     // upstream offset the link writer has finished with
  Clock::time_point started_;
  std::uint64_t bytes_up_ = 0;    // local socket -> tunnel
  std::uint64_t bytes_down_ = 0;  // tunnel -> local socket
  int chunks_queued_ = 0;
  bool connected_;
  bool waiting_ = false;          // pump_local is parked on wake_
  bool writing_ = false;          // a local write is in flight
  bool fin_sent_ = false;
  bool remote_fin_ = false;
  bool shut_down_send_ = false;
  bool fin_acked_ = false;        // resumable: the peer's application has our FIN
  bool closed_ = false;
  bool reset_ = false;
};

}  // namespace lpk::tunnel::detail
