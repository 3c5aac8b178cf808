#pragma once
// Listening sockets for both ends: the proxy's service listeners and the agent's tunnel and
// served ports are opened the same way and fail with the same kind of one-line message.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "proxy/tunnel/error.hpp"

namespace lpk::tunnel {

/// What to tell a person for the usual causes, after the cause itself. Each caller knows its
/// own remedy ("map the service to another port", "drop it from --serve").
struct BindHints {
  std::string in_use = "stop the program holding it";
  std::string privileged = "run with CAP_NET_BIND_SERVICE or use a port of 1024 or more";
  std::string not_here = "use an address of this machine";
};

/// One line: "cannot listen on ADDR:PORT: <cause>; <hint>". The port-in-use cause names the
/// `ss` command that shows who holds the port.
std::string describe_bind_error(const boost::asio::ip::tcp::endpoint& endpoint,
                                const boost::system::error_code& ec, const BindHints& hints = {});

/// Opens, binds (SO_REUSEADDR) and listens on `endpoint` with the system's largest backlog. The
/// Problem carries the socket error and describe_bind_error's line.
Result<boost::asio::ip::tcp::acceptor> open_listener(const boost::asio::any_io_executor& executor,
                                                     const boost::asio::ip::tcp::endpoint& endpoint,
                                                     const BindHints& hints = {});

/// `ADDR:PORT`, with an IPv6 address in brackets.
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace lpk::tunnel
