#pragma once
// PortForward's connection: a WebSocket over TLS over TCP. Only kube/portforward_open.cpp (which
// connects and upgrades) and kube/portforward_io.cpp (which reads, writes and closes) include it:
// Beast's WebSocket and SSL templates are the slowest code of lpk to compile, and in two files
// the two halves compile in parallel.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "kube/detail/proxied_stream.hpp"
#include "kube/detail/server_url.hpp"
#include "kube/portforward.hpp"

namespace lpk::kube {

namespace detail {
inline constexpr auto kTuple = boost::asio::as_tuple(boost::asio::use_awaitable);
inline constexpr std::size_t kMaxChunk = 32 * 1024;  // k8s-notes §1.3: chunks of 32 KiB or less

/// Turns `stream`, connected to `proxy`, into a tunnel to `server` (kube/portforward_proxy.cpp):
/// TLS with an https:// proxy (verified unless `insecure`), then HTTP CONNECT; or the SOCKS5
/// handshake. nullopt when the tunnel is open; else why not, naming the proxy.
boost::asio::awaitable<std::optional<PortForwardFailure>> open_proxy_tunnel(
    ProxiedStream& stream, const ProxyUrl& proxy, const ServerUrl& server, bool insecure);
}  // namespace detail

struct PortForward::Impl {
  Impl(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context context)
      : tls(std::move(context)), ws(detail::ProxiedStream(std::move(socket), tls), tls) {}

  boost::asio::ssl::context tls;  // outlives the streams that use it (server and proxy TLS)
  boost::beast::websocket::stream<boost::asio::ssl::stream<detail::ProxiedStream>> ws;
  std::string description;
  std::uint16_t port = 0;
  detail::V4State state;
  boost::beast::flat_buffer message;
  std::span<const std::uint8_t> unread;  // data payload not yet handed to the reader
  boost::system::error_code failed;      // sticky: every later read returns it
  bool closed = false;
};

}  // namespace lpk::kube
