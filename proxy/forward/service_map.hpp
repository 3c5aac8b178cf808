#pragma once
// The static service map of `lpk-proxy run`: which local (address, port) carries which
// target, and where inbound streams land. Pure parsing; errors are one-line messages.

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <istream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/tunnel/protocol.hpp"

namespace lpk::proxy {

struct Mapping {
  std::string name;                          // service name, or empty for an explicit address
  std::optional<boost::asio::ip::address> address;  // explicit listen address
  std::uint16_t port = 0;                    // listen port (0: ephemeral, explicit only)
  tunnel::Target target;
};

/// A mapping's target with this suffix is a UDP port: datagrams, not a TCP stream.
inline constexpr std::string_view kUdpSuffix = "/udp";

/// Parses `NAME:PORT=HOST:PORT` or `ADDR:PORT=HOST:PORT` (IPv6 in brackets), either followed by
/// `/udp` for a UDP port.
/// Throws std::invalid_argument saying what is wrong.
Mapping parse_mapping(std::string_view spec);

/// One mapping per line; blank lines and `#` comments are skipped. Errors name the line.
std::vector<Mapping> parse_mapping_file(std::istream& in, std::string_view path);

/// `ADDR:PORT` (an IP address, IPv6 in brackets; port 0 allowed) as a listening endpoint: the
/// left side of an explicit mapping, and `--dns`. Throws std::invalid_argument.
boost::asio::ip::tcp::endpoint parse_listen_endpoint(std::string_view addr_port);

/// `HOST:PORT` as a stream target: an IP literal becomes an address target, anything else a
/// DNS name for the agent to resolve.
tunnel::Target parse_target(std::string_view host_port);

/// Where inbound streams (connections that reached the agent's served ports) go locally.
struct InboundRoutes {
  std::optional<std::uint16_t> any_port;        // `--local-port 8080`
  std::map<std::uint16_t, std::uint16_t> by_remote;  // `--local-port 8080:80`: 80 -> 8080

  /// Adds `PORT` or `LOCAL:REMOTE`; throws std::invalid_argument.
  void add(std::string_view spec);
  std::optional<std::uint16_t> local_port_for(std::uint16_t remote) const;
};

}  // namespace lpk::proxy
