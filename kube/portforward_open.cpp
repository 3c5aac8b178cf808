#include "kube/portforward.hpp"

// PortForward::open: TCP (through a proxy if any), TLS, and the WebSocket upgrade.
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <optional>
#include <tuple>

#include "kube/detail/portforward_impl.hpp"
#include "kube/detail/server_url.hpp"

namespace lpk::kube {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using detail::kMaxChunk;
using detail::kTuple;
constexpr const char* kSubprotocol = "v4.channel.k8s.io";

// ---- opening --------------------------------------------------------------------------------

namespace {

using detail::ServerUrl;

PortForwardFailure failure(PortForwardErrc code, std::string message) {
  return {make_error_code(code), std::move(message)};
}
PortForwardFailure failure(error_code code, std::string message) {
  return {code, std::move(message)};
}

// The proxy to use for `server` when the kubeconfig names none: Go's ProxyFromEnvironment,
// which never proxies loopback hosts.
std::string proxy_from_environment(const ServerUrl& server) {
  const char* proxy = std::getenv("HTTPS_PROXY");
  if (!proxy || !*proxy) proxy = std::getenv("https_proxy");
  if (!proxy || !*proxy) return {};
  error_code ec;
  auto address = asio::ip::make_address(server.host, ec);
  if (server.host == "localhost" || (!ec && address.is_loopback())) return {};
  const char* no_proxy = std::getenv("NO_PROXY");
  if (!no_proxy || !*no_proxy) no_proxy = std::getenv("no_proxy");
  if (no_proxy && detail::no_proxy_matches(no_proxy, server.host)) return {};
  return proxy;
}

std::optional<PortForwardFailure> configure_tls(ssl::context& tls, const PortForwardTarget& t) {
  error_code ec;
  if (!t.ca_pem.empty()) {
    tls.add_certificate_authority(asio::buffer(t.ca_pem), ec);
    if (ec)
      return failure(PortForwardErrc::bad_target,
                     "the cluster CA is not a valid PEM "
                     "certificate: " +
                         ec.message());
  } else if (!t.insecure) {
    tls.set_default_verify_paths(ec);
  }
  tls.set_verify_mode(t.insecure ? ssl::verify_none : ssl::verify_peer);
  if (t.client_cert_pem.empty() != t.client_key_pem.empty()) {
    return failure(PortForwardErrc::bad_target,
                   "a client certificate needs its key and a key "
                   "its certificate; the credentials have one");
  }
  if (!t.client_cert_pem.empty()) {
    tls.use_certificate_chain(asio::buffer(t.client_cert_pem), ec);
    if (!ec) tls.use_private_key(asio::buffer(t.client_key_pem), ssl::context::pem, ec);
    if (ec)
      return failure(PortForwardErrc::bad_target,
                     "the client certificate or key is not "
                     "valid PEM: " +
                         ec.message());
  }
  return std::nullopt;
}

std::string api_path(const PortForwardTarget& t, const ServerUrl& url) {
  return url.prefix + "/api/v1/namespaces/" + t.pod_namespace + "/pods/" + t.pod +
         "/portforward?ports=" + std::to_string(t.port);
}

// TCP connect (to the proxy or the server), the proxy's tunnel, TLS, and the WebSocket upgrade.
awaitable<std::optional<PortForwardFailure>> connect_and_upgrade(
    PortForward::Impl& impl, const PortForwardTarget& t, const ServerUrl& url,
    const std::optional<detail::ProxyUrl>& proxy) {
  auto server = url.host_port();
  auto& socket = beast::get_lowest_layer(impl.ws).socket();
  auto dial_host = proxy ? proxy->host : url.host;
  auto dial_port = proxy ? proxy->port : url.port;
  tcp::resolver resolver(socket.get_executor());
  auto [rec, endpoints] =
      co_await resolver.async_resolve(dial_host, std::to_string(dial_port), kTuple);
  error_code ec = rec;
  if (!ec) std::tie(ec, std::ignore) = co_await asio::async_connect(socket, endpoints, kTuple);
  if (ec) {
    co_return failure(
        ec, "cannot connect to " +
                (proxy ? "the proxy " + proxy->display() : "the API server " + server) + ": " +
                ec.message());
  }
  socket.set_option(tcp::no_delay(true), ec);
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  if (proxy) {
    auto refused = co_await detail::open_proxy_tunnel(beast::get_lowest_layer(impl.ws), *proxy, url,
                                                      t.insecure);
    if (refused) co_return refused;
  }
  auto name = t.tls_server_name.empty() ? url.host : t.tls_server_name;
  auto& tls = impl.ws.next_layer();
  asio::ip::make_address(name, ec);
  if (ec) SSL_set_tlsext_host_name(tls.native_handle(), name.c_str());  // SNI is for names only
  if (!t.insecure) tls.set_verify_callback(ssl::host_name_verification(name));
  std::tie(ec) = co_await tls.async_handshake(ssl::stream_base::client, kTuple);
  if (ec) {
    co_return failure(ec, "TLS with the API server " + server + " failed: " + ec.message() +
                              (t.insecure ? "" : " (check the cluster CA and tls-server-name)"));
  }
  impl.ws.set_option(
      websocket::stream_base::decorator([headers = t.headers](websocket::request_type& req) {
        for (const auto& [k, v] : headers) req.insert(k, v);
        req.set(http::field::sec_websocket_protocol, kSubprotocol);
      }));
  impl.ws.set_option(
      websocket::stream_base::timeout{websocket::stream_base::none(), t.idle_timeout, true});
  impl.ws.binary(true);
  impl.ws.auto_fragment(false);
  impl.ws.write_buffer_bytes(kMaxChunk + 64);
  impl.ws.read_message_max(t.max_message);
  websocket::response_type res;
  auto what = "pod " + t.pod_namespace + "/" + t.pod + " port " + std::to_string(t.port);
  auto path = api_path(t, url);
  std::tie(ec) = co_await impl.ws.async_handshake(res, server, path, kTuple);
  if (ec == websocket::error::upgrade_declined) {
    auto code = res.result_int() == 403 && res.body().empty() ? PortForwardErrc::subprotocol_refused
                                                              : PortForwardErrc::upgrade_refused;
    auto refused =
        failure(code, detail::describe_refusal(res.result_int(), res.reason(), res.body(), what));
    refused.http_status = res.result_int();
    co_return refused;
  }
  if (ec) {
    co_return failure(
        ec, "the WebSocket upgrade for " + what + " with " + server + " failed: " + ec.message());
  }
  if (res[http::field::sec_websocket_protocol] != kSubprotocol) {
    co_return failure(PortForwardErrc::subprotocol_mismatch,
                      "the API server " + server + " accepted the port-forward to " + what +
                          " without confirming the v4.channel.k8s.io subprotocol (it answered '" +
                          std::string(res[http::field::sec_websocket_protocol]) + "')");
  }
  co_return std::nullopt;
}

}  // namespace

awaitable<PortForwardResult> PortForward::open(asio::any_io_executor ex,
                                               const PortForwardTarget& t) {
  auto what = "pod " + t.pod_namespace + "/" + t.pod + " port " + std::to_string(t.port);
  auto url = detail::parse_server_url(t.server, /*default_tls=*/true);
  if (!url || url->scheme != "https") {
    co_return failure(PortForwardErrc::bad_target,
                      "the API server URL '" + t.server + "' is not https://HOST[:PORT][/PATH]");
  }
  if (t.port == 0 || t.pod.empty() || t.pod_namespace.empty()) {
    co_return failure(PortForwardErrc::bad_target,
                      "a port-forward needs a namespace, a pod and "
                      "a port from 1 to 65535");
  }
  auto proxy_url = t.proxy_url ? *t.proxy_url : proxy_from_environment(*url);
  std::optional<detail::ProxyUrl> proxy;
  if (!proxy_url.empty()) {
    proxy = detail::parse_proxy_url(proxy_url);
    if (!proxy) {
      co_return failure(PortForwardErrc::bad_target,
                        "the proxy URL is not http://, https:// or socks5://[USER:PASSWORD@]"
                        "HOST[:PORT]; fix proxy-url in the kubeconfig or HTTPS_PROXY");
    }
  }
  ssl::context tls(ssl::context::tls_client);
  if (auto bad = configure_tls(tls, t)) co_return *bad;

  auto impl = std::make_unique<Impl>(tcp::socket(ex), std::move(tls));
  impl->port = t.port;
  impl->description = what + " via " + url->host_port();
  auto& socket = beast::get_lowest_layer(impl->ws).socket();
  bool timed_out = false;
  asio::steady_timer watchdog(ex, t.timeout);  // declared after impl: destroyed first
  watchdog.async_wait([&socket, &timed_out](error_code ec) {
    if (ec) return;
    timed_out = true;
    socket.close(ec);
  });
  auto failed = co_await connect_and_upgrade(*impl, t, *url, proxy);
  watchdog.cancel();
  if (failed) {
    if (timed_out) {
      failed->message = "port-forward to " + what + " timed out after " +
                        std::to_string(t.timeout.count()) + " ms (" + failed->message + ")";
    }
    co_return *failed;
  }
  co_return std::unique_ptr<PortForward>(new PortForward(std::move(impl)));
}

}  // namespace lpk::kube
