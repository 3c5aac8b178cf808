#pragma once
// Connecting to a backend of the router: a pod (or a routes file's target), or the port's
// fallback address when no original pod is known. Shared by the HTTP/1 and HTTP/2 relays.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "agent/router/router.hpp"

namespace lpk::router::detail {

/// Dials `to` (nullopt: `port`'s fallback host) within `timeout`, with TCP_NODELAY; nullopt
/// when it cannot be reached, with `why` said (the target and the reason).
boost::asio::awaitable<std::optional<boost::asio::ip::tcp::socket>> dial_backend(
    std::optional<boost::asio::ip::tcp::endpoint> to, const PortSpec& port,
    std::chrono::milliseconds timeout, std::string& why);

}  // namespace lpk::router::detail
