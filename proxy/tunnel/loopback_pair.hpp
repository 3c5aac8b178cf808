#pragma once
// Agent services (docs/protocol.md §7) are streams to reserved names that the agent answers
// itself. Both ends meet them through a connected pair of loopback sockets: one end goes to
// the tunnel session, the other to the code that serves or asks.

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <string_view>

namespace lpk::tunnel {

/// The reserved names; docs/protocol.md §7 is the reference.
inline constexpr std::string_view kServiceDomain = "lpk.internal";
inline constexpr std::string_view kEnvServiceHost = "env.lpk.internal";
inline constexpr std::uint16_t kEnvServicePort = 1;
inline constexpr std::string_view kDnsServiceHost = "dns.lpk.internal";
inline constexpr std::uint16_t kDnsServicePort = 53;

/// A connected pair of loopback TCP sockets, TCP_NODELAY on both. The accepted end is checked
/// to be our own connect, so no other local process can take its place. Does not block: a
/// loopback connect completes in the kernel before anyone accepts.
boost::system::result<std::array<boost::asio::ip::tcp::socket, 2>> loopback_pair(
    const boost::asio::any_io_executor& executor);

}  // namespace lpk::tunnel
