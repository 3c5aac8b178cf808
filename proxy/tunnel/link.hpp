#pragma once
// The byte stream a session runs over. Plain TCP here; the port-forward WebSocket of the kube
// module implements the same interface, so the session never knows which it has.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <span>
#include <string>
#include <tuple>

namespace lpk::tunnel {

class Link {
 public:
  using Result = std::tuple<boost::system::error_code, std::size_t>;
  virtual ~Link() = default;

  /// Reads at least one byte. Never called concurrently with itself.
  virtual boost::asio::awaitable<Result> read_some(boost::asio::mutable_buffer buffer) = 0;
  /// Writes all of `buffers`. Never called concurrently with itself.
  virtual boost::asio::awaitable<Result> write(
      std::span<const boost::asio::const_buffer> buffers) = 0;
  /// Idempotent; pending reads and writes complete with an error.
  virtual void close() = 0;
  /// For logs: the peer's address.
  virtual std::string describe() const = 0;
  virtual boost::asio::any_io_executor executor() = 0;
};

class TcpLink final : public Link {
 public:
  /// Sets TCP_NODELAY and keepalive on `socket`.
  explicit TcpLink(boost::asio::ip::tcp::socket socket);

  boost::asio::awaitable<Result> read_some(boost::asio::mutable_buffer buffer) override;
  boost::asio::awaitable<Result> write(
      std::span<const boost::asio::const_buffer> buffers) override;
  void close() override;
  std::string describe() const override { return peer_; }
  boost::asio::any_io_executor executor() override { return socket_.get_executor(); }

 private:
  boost::asio::ip::tcp::socket socket_;
  std::string peer_;
};

}  // namespace lpk::tunnel
