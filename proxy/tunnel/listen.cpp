#include "proxy/tunnel/listen.hpp"

namespace lpk::tunnel {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

std::string endpoint_text(const tcp::endpoint& endpoint) {
  auto address = endpoint.address().to_string();
  if (endpoint.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(endpoint.port());
}

std::string describe_bind_error(const tcp::endpoint& endpoint, const error_code& ec,
                                const BindHints& hints) {
  auto prefix = "cannot listen on " + endpoint_text(endpoint) + ": ";
  if (ec == asio::error::address_in_use) {
    return prefix + "the port is in use (ss -ltnp 'sport = :" + std::to_string(endpoint.port()) +
           "' shows who holds it); " + hints.in_use;
  }
  if (ec == asio::error::access_denied || ec == asio::error::no_permission) {
    return prefix + "ports below 1024 need privilege; " + hints.privileged;
  }
  if (ec == boost::system::errc::address_not_available) {
    return prefix + "the address is not on this machine; " + hints.not_here;
  }
  return prefix + ec.message();
}

Result<tcp::acceptor> open_listener(const asio::any_io_executor& executor,
                                    const tcp::endpoint& endpoint, const BindHints& hints) {
  tcp::acceptor acceptor(executor);
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Problem{ec, describe_bind_error(endpoint, ec, hints)};
  return acceptor;
}

}  // namespace lpk::tunnel
