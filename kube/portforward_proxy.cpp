// The port-forward's way through a proxy, as client-go's upgrade dialer goes
// (apimachinery/pkg/util/httpstream/spdy, dialWithHTTPProxy and dialWithSocks5Proxy): HTTP
// CONNECT to an http:// proxy, the same inside TLS to an https:// proxy (verified with the
// cluster's TLS settings, as Go's tls.Dialer does with the transport's config), or SOCKS5 with
// the host name sent to the proxy. The API server's TLS then runs inside the tunnel.
#include <openssl/ssl.h>

#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <tuple>

#include "kube/detail/portforward_impl.hpp"
#include "kube/detail/socks5.hpp"
#include "kube/text.hpp"

namespace lpk::kube::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::awaitable;
using boost::system::error_code;

namespace {

PortForwardFailure refused(const ProxyUrl& proxy, const std::string& what) {
  return {make_error_code(PortForwardErrc::proxy_refused),
          "the proxy " + proxy.display() + " " + what};
}

awaitable<std::optional<PortForwardFailure>> http_connect(ProxiedStream& stream,
                                                          const ProxyUrl& proxy,
                                                          const std::string& target) {
  http::request<http::empty_body> req{http::verb::connect, target, 11};
  req.set(http::field::host, target);
  if (proxy.user) {
    req.set(http::field::proxy_authorization,
            "Basic " + text::base64_encode(*proxy.user + ":" + proxy.password));
  }
  auto [ec, written] = co_await http::async_write(stream, req, kTuple);
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // a CONNECT answer has no body
  if (!ec)
    std::tie(ec, std::ignore) = co_await http::async_read_header(stream, buffer, parser, kTuple);
  if (ec) co_return refused(proxy, "failed during CONNECT " + target + ": " + ec.message());
  auto status = parser.get().result_int();
  if (status != 200) {
    co_return refused(proxy, "refused CONNECT " + target + " with HTTP " + std::to_string(status) +
                                 " " + std::string(parser.get().reason()));
  }
  // Bytes after the 200 would be the API server's, which has not been spoken to yet.
  if (buffer.size() != 0) co_return refused(proxy, "sent data after its CONNECT answer");
  co_return std::nullopt;
}

awaitable<std::optional<PortForwardFailure>> proxy_tls(ProxiedStream& stream, const ProxyUrl& proxy,
                                                       bool insecure) {
  auto& tls = stream.proxy_tls();
  error_code ec;
  asio::ip::make_address(proxy.host, ec);
  if (ec) SSL_set_tlsext_host_name(tls.native_handle(), proxy.host.c_str());  // names only
  if (!insecure) tls.set_verify_callback(ssl::host_name_verification(proxy.host));
  std::tie(ec) = co_await tls.async_handshake(ssl::stream_base::client, kTuple);
  if (ec) {
    co_return refused(proxy, "failed TLS: " + ec.message() +
                                 (insecure ? ""
                                           : " (its certificate is verified with the "
                                             "cluster's certificate-authority, as kubectl does)"));
  }
  stream.use_proxy_tls();
  co_return std::nullopt;
}

// Writes `request`, then reads exactly `answer.size()` bytes.
awaitable<error_code> exchange(asio::ip::tcp::socket& socket, std::span<const std::uint8_t> request,
                               std::span<std::uint8_t> answer) {
  auto [ec, n] =
      co_await asio::async_write(socket, asio::buffer(request.data(), request.size()), kTuple);
  if (!ec)
    std::tie(ec, n) =
        co_await asio::async_read(socket, asio::buffer(answer.data(), answer.size()), kTuple);
  co_return ec;
}

awaitable<std::optional<PortForwardFailure>> socks5_connect(asio::ip::tcp::socket& socket,
                                                            const ProxyUrl& proxy,
                                                            const ServerUrl& server) {
  auto request = socks5::encode_connect(server.host, static_cast<std::uint16_t>(server.port));
  auto credentials =
      proxy.user ? socks5::encode_password(*proxy.user, proxy.password) : std::nullopt;
  if (!request)
    co_return refused(proxy, "cannot be asked for '" + server.host + "' (name too long)");
  if (proxy.user && !credentials) {
    co_return refused(proxy,
                      "cannot take the URL's credentials (SOCKS5 needs a user name and "
                      "password of 1 to 255 bytes)");
  }
  std::array<std::uint8_t, 2> two{};
  auto failed = [&](error_code ec) {
    return refused(proxy, "closed the SOCKS5 handshake: " + ec.message());
  };
  if (auto ec = co_await exchange(socket, socks5::encode_greeting(proxy.user.has_value()), two))
    co_return failed(ec);
  auto choice = socks5::parse_method_choice(two, proxy.user.has_value());
  if (!choice.error.empty()) co_return refused(proxy, "answered with " + choice.error);
  if (choice.method == socks5::kUserPassword) {
    if (auto ec = co_await exchange(socket, *credentials, two)) co_return failed(ec);
    if (auto error = socks5::parse_password_status(two); !error.empty()) {
      co_return refused(proxy, "refused the credentials of the proxy URL: " + error);
    }
  }
  std::array<std::uint8_t, 4 + 1 + 255 + 2> reply{};
  std::span<std::uint8_t> head(reply.data(), socks5::kReplyHead);
  if (auto ec = co_await exchange(socket, *request, head)) co_return failed(ec);
  auto parsed = socks5::parse_connect_reply(head);
  if (!parsed.error.empty()) {
    co_return refused(proxy, "refused to connect to " + server.host_port() + ": " + parsed.error);
  }
  auto [ec, n] = co_await asio::async_read(
      socket, asio::buffer(reply.data() + head.size(), parsed.size - head.size()), kTuple);
  if (ec) co_return failed(ec);
  co_return std::nullopt;
}

}  // namespace

awaitable<std::optional<PortForwardFailure>> open_proxy_tunnel(ProxiedStream& stream,
                                                               const ProxyUrl& proxy,
                                                               const ServerUrl& server,
                                                               bool insecure) {
  if (proxy.scheme == "socks5") co_return co_await socks5_connect(stream.socket(), proxy, server);
  if (proxy.scheme == "https") {
    if (auto failed = co_await proxy_tls(stream, proxy, insecure)) co_return failed;
  }
  co_return co_await http_connect(stream, proxy, server.host_port());
}

}  // namespace lpk::kube::detail
