#pragma once
// The dns service (dns.lpk.internal:53): DNS over TCP framing (RFC 1035 4.2.2, a two-byte
// length before each message) on one tunnel stream, several queries in flight. Each query is
// forwarded over UDP, with an id of the forwarder's own, to the first nameserver of the pod's
// resolv.conf (the cluster DNS); a truncated answer is asked again over TCP; a query without an
// answer within the timeout gets SERVFAIL. Answers go back with the client's id, in the order
// they arrive.
//
// Malformed input (a message shorter than a header, a response, not exactly one question, a
// compressed or truncated question) resets that stream only.
//
// Threading: one executor. Lifetime: create with make_shared, start(); the forwarder keeps
// itself alive until the stream ends; stop() is idempotent.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/tunnel/error.hpp"

namespace lpk::agent {

struct DnsForwarderOptions {
  std::string resolv_conf = "/etc/resolv.conf";
  std::chrono::milliseconds timeout{1'500};   ///< per query, then SERVFAIL (the proxy waits 2 s)
  std::chrono::milliseconds retransmit{500};  ///< UDP is sent again once after this
  std::size_t max_in_flight = 256;            ///< per stream; reading pauses beyond it
};

/// The first `nameserver` of a resolv.conf ("nameserver 10.96.0.10"; "ADDR#PORT" gives a port,
/// as lpk's own resolv.conf reader allows, for tests), or a Problem saying why there is none.
tunnel::Result<boost::asio::ip::udp::endpoint> first_nameserver(const std::string& resolv_conf);

/// Offset just past the single question of `query`, or nullopt if the question is truncated,
/// compressed or malformed.
std::optional<std::size_t> question_end(std::span<const std::uint8_t> query);

/// A SERVFAIL response to `query` (header and question only), with the query's id.
std::vector<std::uint8_t> servfail_for(std::span<const std::uint8_t> query, std::size_t qend);

class DnsForwarder : public std::enable_shared_from_this<DnsForwarder> {
 public:
  DnsForwarder(boost::asio::ip::tcp::socket stream, boost::asio::ip::udp::endpoint nameserver,
               DnsForwarderOptions options);
  ~DnsForwarder();

  /// Opens the UDP socket toward the nameserver; a Problem naming it if that fails.
  tunnel::Result<void> open();
  void start();
  void stop();

 private:
  struct Pending;
  boost::asio::awaitable<void> read_queries();
  boost::asio::awaitable<void> read_udp();
  boost::asio::awaitable<void> write_answers();
  boost::asio::awaitable<void> watch(std::uint16_t id, std::uint64_t seq,
                                     std::shared_ptr<boost::asio::steady_timer> timer);
  boost::asio::awaitable<void> ask_over_tcp(std::uint16_t id, std::uint64_t seq,
                                            std::shared_ptr<boost::asio::ip::tcp::socket> socket,
                                            std::vector<std::uint8_t> query);
  bool accept_query(std::vector<std::uint8_t> query);
  void on_udp_answer(std::span<const std::uint8_t> answer);
  void send_udp(const Pending& p);
  void complete(std::uint16_t id, std::span<const std::uint8_t> answer);
  Pending* find(std::uint16_t id, std::uint64_t seq);
  std::size_t in_flight() const { return pending_.size() + out_.size(); }
  void abort(const char* why);

  boost::asio::ip::tcp::socket stream_;
  boost::asio::ip::udp::socket udp_;
  boost::asio::ip::udp::endpoint nameserver_;
  DnsForwarderOptions options_;
  std::unordered_map<std::uint16_t, std::unique_ptr<Pending>> pending_;
  std::deque<std::vector<std::uint8_t>> out_;  ///< framed answers for the writer
  boost::asio::steady_timer wake_writer_;
  boost::asio::steady_timer room_;  ///< cancelled when an in-flight slot frees up
  std::uint64_t seq_ = 0;
  std::uint16_t id_seed_;
  bool reading_done_ = false;
  bool stopped_ = false;
};

}  // namespace lpk::agent
