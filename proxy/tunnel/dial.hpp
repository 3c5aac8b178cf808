#pragma once
// Connecting a stream's far end: a TCP connect bounded in time, with the outcome mapped to
// the open result the peer receives. Used by the agent (cluster targets) and the proxy
// (inbound streams to the developer's local port).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <vector>

#include "proxy/tunnel/session.hpp"

namespace lpk::tunnel {

/// Maps a connect or resolve error to what the peer is told.
OpenCode open_code_for(const boost::system::error_code& ec);

/// Tries `endpoints` in order until one accepts, all within `timeout`. Sets TCP_NODELAY.
boost::asio::awaitable<DialResult> dial_tcp(
    const std::vector<boost::asio::ip::tcp::endpoint>& endpoints,
    std::chrono::milliseconds timeout);

/// Resolves `target` (an address needs no lookup) and dials it, all within `timeout`; a
/// datagram target gets a UDP flow (dial_udp, datagram_flow.hpp).
/// Inbound targets are not dialable and get not_permitted.
boost::asio::awaitable<DialResult> resolve_and_dial(const Target& target,
                                                    std::chrono::milliseconds timeout);

}  // namespace lpk::tunnel
