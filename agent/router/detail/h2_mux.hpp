#pragma once
// One client HTTP/2 connection of the router, routed per stream: the router is the server to
// the client (its SETTINGS, ACKs, PINGs answered, GOAWAY) and a client to each backend (one
// upstream HTTP/2 connection per backend, its own odd stream ids). Each request's header
// block is decoded, picks its backend (RouteTable::pick) and is encoded again toward it; DATA,
// trailers and RST_STREAM follow the stream's id mapping both ways.
//
// Flow control per hop: DATA a side sent is written on when the other side's stream and
// connection windows allow, and the sender gets its window back (WINDOW_UPDATE) only once the
// bytes went out: what the router holds per connection is bounded by the windows it gives.
// (h2_mux.cpp: connections and frames; h2_mux_streams.cpp: streams and upstreams.)
//
// Lifetime: run()'s caller and each upstream's coroutine hold a shared_ptr; stop() closes
// every socket and wakes every writer, which ends them. Everything runs on one thread.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/router/detail/byte_buffer.hpp"
#include "agent/router/detail/shared.hpp"
#include "agent/router/h2_frame.hpp"
#include "agent/router/hpack.hpp"

namespace lpk::router::detail {

/// The windows the router gives each peer: per stream (SETTINGS_INITIAL_WINDOW_SIZE) and per
/// connection; the bound of what it holds of one peer's DATA.
inline constexpr std::int64_t kH2StreamWindow = 256 * 1024;
inline constexpr std::int64_t kH2ConnectionWindow = 1024 * 1024;
/// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
inline constexpr std::uint32_t kH2MaxClientStreams = 256;

class H2Mux : public std::enable_shared_from_this<H2Mux> {
 public:
  /// `received`: what the client sent so far, from its connection preface on.
  H2Mux(std::shared_ptr<Shared> shared, boost::asio::ip::tcp::socket client,
        std::string_view received, PortSpec port);
  H2Mux(const H2Mux&) = delete;
  H2Mux& operator=(const H2Mux&) = delete;

  /// Serves the client until it or the router ends the connection.
  boost::asio::awaitable<void> run();
  /// Closes every socket; idempotent.
  void stop();
  /// GOAWAY to the client: the streams it has run to their end, then the connection closes.
  void drain();
  /// For the connection's summary line: streams routed, bytes written to backends and client.
  std::uint64_t requests() const { return requests_; }
  std::uint64_t bytes_up() const { return to_upstream_; }
  std::uint64_t bytes_down() const { return to_client_; }

 private:
  struct Peer;
  /// One queued frame (or frames) toward a peer; DATA carries the credit its sender gets back
  /// once it is written.
  struct Item {
    std::string bytes;
    std::weak_ptr<Peer> sender;
    std::uint32_t stream = 0;  // on the sender's side
    std::uint32_t credit = 0;
    bool control = false;  // counted in control_bytes (not DATA)
  };
  /// One HTTP/2 connection: the client's, or one to a backend.
  struct Peer {
    Peer(boost::asio::any_io_executor ex, bool client);
    bool client;
    boost::asio::ip::tcp::socket socket;
    ByteBuffer in;
    std::deque<Item> out;
    std::size_t control_bytes = 0;  // queued bytes that carry no credit
    boost::asio::steady_timer wake;
    bool closing = false;  // write what is queued, then close
    bool ready = false;    // an upstream: its SETTINGS came, streams may open
    bool retired = false;  // an upstream: takes no new streams (GOAWAY, ids used up)
    h2::Settings remote;
    HpackDecoder decoder;
    std::int64_t send_window = 65535;
    std::int64_t recv_window = kH2ConnectionWindow;
    std::uint32_t unacked = 0;  // credit written on, not given back yet
    std::string block;          // a header block being gathered (HEADERS + CONTINUATION)
    std::uint32_t block_stream = 0;
    bool block_end_stream = false;
    std::optional<boost::asio::ip::tcp::endpoint> key;  // an upstream's backend
    std::uint32_t next_id = 1;                          // an upstream's next stream id
    std::uint32_t last_id = 0;                          // the client's highest stream id
    std::map<std::uint32_t, std::uint32_t> ids;         // an upstream's stream -> client's
    std::deque<std::uint32_t> waiting;                  // client streams to open upstream
  };
  /// Headers, or data, in the order a side sent them.
  struct Part {
    bool is_headers = false;
    std::vector<HeaderField> headers;
    std::string data;
    std::size_t offset = 0;  // of data already sent on
    bool end = false;        // END_STREAM
  };
  /// One direction of a stream: up (client to backend) or down.
  struct Half {
    std::deque<Part> pending;
    std::int64_t window = 65535;                 // the receiver's window for the stream
    std::int64_t recv_window = kH2StreamWindow;  // what the sender may still send
    std::uint32_t unacked = 0;
    bool received_end = false;  // the sender's END_STREAM came
    bool ended = false;         // END_STREAM went on
  };
  struct Stream {
    std::uint32_t id = 0;  // the client's
    std::uint32_t up_id = 0;
    std::shared_ptr<Peer> upstream;
    Half up, down;
    bool responded = false;  // response headers came
    /// A request that was all headers, kept to send again when a backend's GOAWAY says it
    /// never saw it (nginx says so after each 1000 requests of a connection).
    std::vector<HeaderField> retry;
    int tries = 0;  // connections it was sent again on
  };

  boost::asio::awaitable<void> serve_upstream(std::shared_ptr<Peer> peer);
  boost::asio::awaitable<h2::Error> read_frames(Peer& p);
  boost::asio::awaitable<void> read_client();
  boost::asio::awaitable<void> read_upstream(std::shared_ptr<Peer> u);
  boost::asio::awaitable<void> write_frames(std::shared_ptr<Peer> p);
  h2::Error on_frame(Peer& p, const h2::Frame& f);
  h2::Error on_header_fragment(Peer& p, const h2::Frame& f);
  h2::Error on_header_block(Peer& p);
  void on_request(std::uint32_t id, std::vector<HeaderField> fields, bool end);
  h2::Error on_data(Peer& p, const h2::Frame& f);
  h2::Error on_settings(Peer& p, const h2::Frame& f);
  h2::Error on_window_update(Peer& p, const h2::Frame& f);
  /// A client's reset can be a connection error: ENHANCE_YOUR_CALM for rapid resets.
  h2::Error on_rst_stream(Peer& p, const h2::Frame& f);
  void on_goaway(Peer& p, const h2::Frame& f);

  std::shared_ptr<Peer> upstream_for(std::optional<boost::asio::ip::tcp::endpoint> to);
  void open_waiting(Peer& u);
  /// `u` closed (goaway: it said GOAWAY with `last`, and streams above it were not seen).
  void upstream_gone(Peer& u, bool goaway, std::uint32_t last);
  /// `s` lost its upstream connection: sent again, finished, answered 502 or reset.
  void stream_gone(Stream& s, bool goaway);
  /// Queues `s` on the connection to `key` (a new one if need be).
  void rehome(Stream& s, std::optional<boost::asio::ip::tcp::endpoint> key);
  Stream* stream_of(Peer& p, std::uint32_t id);
  /// Sends what `s`'s half toward the backend (up) or the client allows; ends the stream
  /// when both halves ended.
  void pump(Stream& s, bool up);
  void pump_toward(Peer& p);
  bool finish_if_done(Stream& s);
  void respond_error(Stream& s, std::string_view why);
  void detach_upstream(Stream& s);
  /// RST_STREAM to the sides given a code, then erase().
  void reset(Stream& s, std::optional<h2::Error> to_client, std::optional<h2::Error> to_upstream);
  void erase(Stream& s);
  void give_back(Peer& sender, Half* half, std::uint32_t stream, std::uint32_t n);
  void give_back_item(const Item& item);
  void discard(Half& h, Peer* sender);
  void send(Peer& to, std::string bytes);

  std::shared_ptr<Shared> shared_;
  PortSpec port_;
  std::shared_ptr<Peer> client_;
  std::vector<std::shared_ptr<Peer>> upstreams_;
  std::map<std::uint32_t, std::unique_ptr<Stream>> streams_;  // by the client's id
  bool goaway_received_ = false;
  bool stopped_ = false;
  std::uint64_t requests_ = 0;
  std::uint64_t premature_resets_ = 0;  // client resets of streams not answered yet
  std::uint64_t to_upstream_ = 0;
  std::uint64_t to_client_ = 0;
};

}  // namespace lpk::router::detail
