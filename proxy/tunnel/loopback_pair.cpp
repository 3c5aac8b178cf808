#include "proxy/tunnel/loopback_pair.hpp"

namespace lpk::tunnel {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

boost::system::result<std::array<tcp::socket, 2>> loopback_pair(
    const asio::any_io_executor& executor) {
  error_code ec;
  tcp::acceptor acceptor(executor);
  acceptor.open(tcp::v4(), ec);
  if (!ec) acceptor.bind({asio::ip::address_v4::loopback(), 0}, ec);
  if (!ec) acceptor.listen(8, ec);
  if (!ec) acceptor.non_blocking(true, ec);
  tcp::socket ours(executor);
  if (!ec) ours.connect(acceptor.local_endpoint(), ec);
  if (ec) return ec;
  const auto ours_endpoint = ours.local_endpoint(ec);
  if (ec) return ec;
  // Anyone else who connected in the instant the port was open is turned away.
  for (int tries = 0; tries < 8; ++tries) {
    tcp::socket theirs(executor);
    acceptor.accept(theirs, ec);
    if (ec) return ec;
    if (theirs.remote_endpoint(ec) == ours_endpoint && !ec) {
      ours.set_option(tcp::no_delay(true), ec);
      theirs.set_option(tcp::no_delay(true), ec);
      return std::array<tcp::socket, 2>{std::move(ours), std::move(theirs)};
    }
  }
  return asio::error::connection_aborted;
}

}  // namespace lpk::tunnel
