#pragma once
// Agent services (proxy/tunnel/agent_services.hpp) are streams to reserved names that the agent
// answers itself. Both ends meet them through a connected pair of loopback sockets: one end goes
// to the tunnel session, the other to the code that serves or asks.

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>

namespace lpk::tunnel {

/// A connected pair of loopback TCP sockets, TCP_NODELAY on both. The accepted end is checked
/// to be our own connect, so no other local process can take its place. Does not block: a
/// loopback connect completes in the kernel before anyone accepts.
boost::system::result<std::array<boost::asio::ip::tcp::socket, 2>> loopback_pair(
    const boost::asio::any_io_executor& executor);

}  // namespace lpk::tunnel
