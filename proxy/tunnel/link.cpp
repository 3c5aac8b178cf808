#include "proxy/tunnel/link.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace lpk::tunnel {

namespace asio = boost::asio;
using asio::ip::tcp;

TcpLink::TcpLink(tcp::socket socket) : socket_(std::move(socket)) {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  socket_.set_option(asio::socket_base::keep_alive(true), ec);
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? "tcp" : "tcp " + ep.address().to_string() + ":" + std::to_string(ep.port());
}

asio::awaitable<Link::Result> TcpLink::read_some(asio::mutable_buffer buffer) {
  co_return co_await socket_.async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<Link::Result> TcpLink::write(std::span<const asio::const_buffer> buffers) {
  co_return co_await asio::async_write(socket_, buffers, asio::as_tuple(asio::use_awaitable));
}

void TcpLink::close() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace lpk::tunnel
