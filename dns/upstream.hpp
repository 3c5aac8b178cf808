#pragma once
// Forwarding to the resolvers the machine used before lpk, through c-ares driven by the
// caller's io_context (ares socket-state callbacks + Asio descriptor waits + one timer), with
// a TTL cache in front. Upstream answers are relayed as they are: rcode, flags and EDNS.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/detail/cache.hpp"
#include "dns/resolver.hpp"

namespace lpk::dns {

struct UpstreamOptions {
  std::string resolv_conf = "/etc/resolv.conf";
  std::chrono::milliseconds timeout{1000};  ///< per try; the c-ares timeout doubles each round
  int tries = 2;
  /// Never forward to these (the stub's own address): a resolv.conf that already points at
  /// the stub would otherwise make a loop.
  std::vector<boost::asio::ip::udp::endpoint> exclude;
  std::size_t cache_entries = 20000;
  detail::Cache::Clock clock;  ///< default std::chrono::steady_clock::now; tests inject one
};

/// `nameserver` lines of a resolv.conf. lpk extension for tests: "nameserver 127.0.0.1#5353"
/// gives a port. Throws std::runtime_error when the file cannot be read.
std::vector<boost::asio::ip::udp::endpoint> read_resolv_conf(const std::string& path);

class Upstream {
 public:
  /// Empty span: no answer (timeout, no server, network error); the caller sends SERVFAIL.
  using Callback = std::function<void(std::span<const std::uint8_t>)>;

  /// Reads the servers from opts.resolv_conf; throws std::runtime_error if that fails.
  Upstream(boost::asio::io_context& io, UpstreamOptions opts);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  /// Cached response to `q` (the client's ID and spelling, aged TTLs); false on a miss.
  bool cached(const Query& q, std::vector<std::uint8_t>& out) { return cache_.lookup(q, out); }

  /// Sends the client's query as it is; `done` gets the response with the client's ID. The
  /// response is cached. `done` runs on the io thread, never inside this call.
  void forward(const Query& q, Callback done);

  /// Asks for `name` (lower-cased wire) / `qtype` with a query of its own (RD, EDNS 1232).
  void query(const std::string& name, std::uint16_t qtype, Callback done);

  /// Cancels everything; pending callbacks are dropped. Idempotent.
  void stop();

  const std::vector<boost::asio::ip::udp::endpoint>& servers() const { return servers_; }
  std::uint64_t sent() const { return sent_; }
  detail::Cache& cache() { return cache_; }

 private:
  struct Watch;
  struct Pending;
  static void on_socket_state(void* self, int fd, int readable, int writable);
  static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void send(std::span<const std::uint8_t> packet, std::unique_ptr<Pending> pending);
  void arm(int fd, const std::shared_ptr<Watch>& w);
  void schedule_timer();
  bool alive(int fd, const std::shared_ptr<Watch>& w) const;

  boost::asio::io_context& io_;
  UpstreamOptions opts_;
  std::vector<boost::asio::ip::udp::endpoint> servers_;
  detail::Cache cache_;
  void* channel_ = nullptr;  // ares_channel, kept opaque so users need not include ares.h
  std::unordered_map<int, std::shared_ptr<Watch>> watches_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  std::uint64_t sent_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace lpk::dns
