#pragma once
// TCP side of the server (RFC 7766): one coroutine per connection reads length-prefixed
// queries without waiting for earlier answers, so several are in flight and answers may
// leave out of order. A watchdog closes connections that neither send nor read in time.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <list>
#include <memory>
#include <vector>

#include "dns/detail/engine.hpp"

namespace lpk::dns::detail {

struct TcpLimits {
  std::chrono::milliseconds idle_timeout{10000};
  std::size_t max_connections = 256;
  std::size_t max_in_flight = 64;
};

class TcpConnection : public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(boost::asio::ip::tcp::socket socket, std::shared_ptr<Engine> engine,
                const TcpLimits& limits);
  void start();
  void stop();
  bool stopped() const { return stopped_; }

 private:
  /// Queries bigger than this are not DNS queries anyone sends; the connection ends.
  static constexpr std::size_t kMaxQuery = 4096;
  /// Answers waiting for a client that does not read: reading pauses beyond this, so memory
  /// stays bounded and the idle watchdog sees a stuck writer.
  static constexpr std::size_t kMaxQueued = 256;
  boost::asio::awaitable<void> read_queries();
  boost::asio::awaitable<void> watch_idle();
  void send(const std::vector<std::uint8_t>& message);
  void write_some();
  void touch() { deadline_ = std::chrono::steady_clock::now() + limits_.idle_timeout; }

  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<Engine> engine_;
  TcpLimits limits_;
  boost::asio::steady_timer idle_timer_;
  boost::asio::steady_timer resume_;  // wakes the paused reader (answers came or were written)
  std::chrono::steady_clock::time_point deadline_;
  std::deque<std::vector<std::uint8_t>> queue_;  // each with its 2-byte length prefix
  std::size_t writing_ = 0;                      // messages in the write in progress
  std::ptrdiff_t in_flight_ = 0;                 // signed: a reply may come before handle() returns
  bool stopped_ = false;
};

class TcpFront : public std::enable_shared_from_this<TcpFront> {
 public:
  TcpFront(boost::asio::io_context& io, std::shared_ptr<Engine> engine, TcpLimits limits);
  void bind(const boost::asio::ip::tcp::endpoint& ep);
  void start();
  void stop();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<Engine> engine_;
  TcpLimits limits_;
  std::list<std::weak_ptr<TcpConnection>> connections_;
  bool stopped_ = false;
};

}  // namespace lpk::dns::detail
