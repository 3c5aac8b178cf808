#include "kube/portforward.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/throw_exception.hpp>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "kube/text.hpp"
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
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr const char* kSubprotocol = "v4.channel.k8s.io";
constexpr std::size_t kMaxChunk = 32 * 1024;  // k8s-notes §1.3: chunks of 32 KiB or less

// ---- error category -------------------------------------------------------------------------

namespace {
class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "lpk.kube.portforward"; }
  std::string message(int ev) const override {
    switch (static_cast<PortForwardErrc>(ev)) {
      case PortForwardErrc::bad_target:
        return "the API server or proxy URL cannot be used";
      case PortForwardErrc::proxy_refused:
        return "the HTTP proxy refused CONNECT";
      case PortForwardErrc::upgrade_refused:
        return "the API server refused the port-forward";
      case PortForwardErrc::subprotocol_refused:
        return "the server does not accept the v4.channel.k8s.io subprotocol";
      case PortForwardErrc::subprotocol_mismatch:
        return "the server did not confirm the v4.channel.k8s.io subprotocol";
      case PortForwardErrc::remote_error:
        return "the port-forward reported an error";
      case PortForwardErrc::protocol_error:
        return "the port-forward server broke the v4 framing";
    }
    return "unknown port-forward error";
  }
};
}  // namespace

const boost::system::error_category& portforward_category() {
  static const Category category;
  return category;
}
error_code make_error_code(PortForwardErrc e) {
  return {static_cast<int>(e), portforward_category()};
}

void throw_exception_from_error(const PortForwardFailure& f, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(f.message), loc);
}

PortForwardTarget portforward_target(const RestConfig& config, const Credentials::Material& auth,
                                     std::string pod_namespace, std::string pod,
                                     std::uint16_t port) {
  PortForwardTarget t;
  t.server = config.cluster.server;
  t.ca_pem = config.cluster.ca_pem;
  t.insecure = config.cluster.insecure_skip_tls_verify;
  t.tls_server_name = config.cluster.tls_server_name;
  if (!config.cluster.proxy_url.empty()) t.proxy_url = config.cluster.proxy_url;
  t.client_cert_pem = auth.client_cert_pem;
  t.client_key_pem = auth.client_key_pem;
  for (const auto& line : auth.headers) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    t.headers.emplace_back(line.substr(0, colon), value);
  }
  t.pod_namespace = std::move(pod_namespace);
  t.pod = std::move(pod);
  t.port = port;
  return t;
}

// ---- pure pieces ----------------------------------------------------------------------------

namespace detail {

V4Message demux_v4(V4State& state, std::span<const std::uint8_t> message, std::uint16_t port) {
  V4Message out;
  if (message.empty()) return out;  // the notes: empty messages are ignored
  std::uint8_t channel = message[0];
  auto payload = message.subspan(1);
  if (channel > 1) {
    out.kind = V4Message::protocol_error;
    out.problem = "message on channel " + std::to_string(channel) + " of a one-port forward";
    return out;
  }
  bool& prefix_seen = channel == 0 ? state.data_prefix_seen : state.error_prefix_seen;
  if (!prefix_seen) {
    // The prefix message is 3 bytes: the channel, then the port as little-endian u16.
    if (payload.size() != 2 || (payload[0] | (payload[1] << 8)) != port) {
      out.kind = V4Message::protocol_error;
      out.problem = "the first message on channel " + std::to_string(channel) +
                    " is not the port prefix for " + std::to_string(port);
      return out;
    }
    prefix_seen = true;
    return out;
  }
  if (payload.empty()) return out;
  out.kind = channel == 0 ? V4Message::data : V4Message::error_text;
  out.payload = payload;
  return out;
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host) {
  std::size_t pos = 0;
  while (pos <= no_proxy.size()) {
    auto comma = no_proxy.find(',', pos);
    if (comma == std::string_view::npos) comma = no_proxy.size();
    auto entry = no_proxy.substr(pos, comma - pos);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (entry == "*") return true;
    if (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
    if (!entry.empty() && (host == entry || (host.size() > entry.size() && host.ends_with(entry) &&
                                             host[host.size() - entry.size() - 1] == '.'))) {
      return true;
    }
    pos = comma + 1;
  }
  return false;
}

std::string describe_refusal(unsigned status, std::string_view reason, std::string_view body,
                             const std::string& what) {
  if (status == 403 && body.empty()) {
    return "the API server refused the port-forward subprotocol v4.channel.k8s.io for " + what +
           " (403 with an empty body); it needs a server that accepts WebSocket port-forward";
  }
  std::string text;
  auto status_json = nlohmann::json::parse(body, nullptr, false);
  if (status_json.is_object() && status_json.value("kind", "") == "Status" &&
      status_json.contains("message") && status_json["message"].is_string()) {
    text = status_json["message"].get<std::string>();
  } else {
    text = std::string(body.substr(0, 300));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
      text.pop_back();
    }
    for (auto& c : text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
  }
  if (text.empty()) text = std::string(reason);
  return "port-forward to " + what + " refused with HTTP " + std::to_string(status) + ": " + text;
}

}  // namespace detail

// ---- the connection -------------------------------------------------------------------------

struct PortForward::Impl {
  Impl(tcp::socket socket, ssl::context context)
      : tls(std::move(context)), ws(std::move(socket), tls) {}

  ssl::context tls;  // outlives the stream that uses it
  websocket::stream<ssl::stream<tcp::socket>> ws;
  std::string description;
  std::uint16_t port = 0;
  detail::V4State state;
  beast::flat_buffer message;
  std::span<const std::uint8_t> unread;  // data payload not yet handed to the reader
  error_code failed;                     // sticky: every later read returns it
  bool closed = false;
};

PortForward::PortForward(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PortForward::~PortForward() { close(); }

std::string PortForward::describe() const { return impl_->description; }
asio::any_io_executor PortForward::executor() const { return impl_->ws.get_executor(); }

void PortForward::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  error_code ec;
  auto& socket = beast::get_lowest_layer(impl_->ws);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

awaitable<void> PortForward::close_gracefully(std::chrono::milliseconds limit) {
  if (impl_->closed) co_return;
  asio::steady_timer watchdog(impl_->ws.get_executor(), limit);
  watchdog.async_wait([this](error_code ec) {
    if (!ec) close();
  });
  auto [ec] = co_await impl_->ws.async_close(websocket::close_code::normal, kTuple);
  // Read until the server's close frame answers ours (or the watchdog fires).
  while (!ec && !impl_->closed) {
    beast::flat_buffer drain;
    std::tie(ec, std::ignore) = co_await impl_->ws.async_read(drain, kTuple);
  }
  watchdog.cancel();
  close();
}

error_code PortForward::fail(PortForwardErrc code, std::string text) {
  if (!impl_->failed) {
    impl_->failed = code;
    error_text_ = std::move(text);
  }
  close();
  return impl_->failed;
}

awaitable<PortForward::Result> PortForward::read_some(asio::mutable_buffer buffer) {
  auto& s = *impl_;
  while (s.unread.empty()) {
    if (s.failed) co_return Result{s.failed, 0};
    s.message.clear();
    auto [ec, n] = co_await s.ws.async_read(s.message, kTuple);
    if (ec == websocket::error::closed) ec = asio::error::eof;
    if (ec) {
      if (!s.failed) s.failed = ec;
      co_return Result{s.failed, 0};
    }
    if (s.ws.got_text()) {
      co_return Result{
          fail(PortForwardErrc::protocol_error, "a text message in binary v4.channel.k8s.io mode"),
          0};
    }
    auto data = s.message.cdata();
    std::span<const std::uint8_t> bytes(static_cast<const std::uint8_t*>(data.data()), data.size());
    auto m = detail::demux_v4(s.state, bytes, s.port);
    if (m.kind == detail::V4Message::protocol_error) {
      co_return Result{fail(PortForwardErrc::protocol_error, std::move(m.problem)), 0};
    }
    if (m.kind == detail::V4Message::error_text) {
      std::string text(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
      co_return Result{fail(PortForwardErrc::remote_error, std::move(text)), 0};
    }
    if (m.kind == detail::V4Message::data) s.unread = m.payload;
  }
  auto n = asio::buffer_copy(buffer, asio::buffer(s.unread.data(), s.unread.size()));
  s.unread = s.unread.subspan(n);
  co_return Result{error_code{}, n};
}

awaitable<PortForward::Result> PortForward::write(std::span<const asio::const_buffer> buffers) {
  static const std::uint8_t kDataChannel = 0;
  auto& s = *impl_;
  std::size_t total = 0;
  std::vector<asio::const_buffer> message;
  std::size_t index = 0, offset = 0;
  while (index < buffers.size()) {
    // One message: the channel byte, then up to kMaxChunk bytes gathered from the buffers.
    message.assign(1, asio::buffer(&kDataChannel, 1));
    std::size_t size = 0;
    while (index < buffers.size() && size < kMaxChunk) {
      auto take = std::min(buffers[index].size() - offset, kMaxChunk - size);
      if (take > 0) {
        message.push_back(
            asio::buffer(static_cast<const char*>(buffers[index].data()) + offset, take));
      }
      size += take;
      offset += take;
      if (offset == buffers[index].size()) ++index, offset = 0;
    }
    if (size == 0) break;
    if (s.failed) co_return Result{s.failed, total};
    auto [ec, n] = co_await s.ws.async_write(message, kTuple);
    if (ec) co_return Result{ec, total};
    total += size;
  }
  co_return Result{error_code{}, total};
}

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

// HTTP CONNECT through `proxy` to `target` (host:port) on an open socket.
awaitable<std::optional<PortForwardFailure>> tunnel_through_proxy(tcp::socket& socket,
                                                                  const std::string& proxy_url,
                                                                  const std::string& target) {
  http::request<http::empty_body> req{http::verb::connect, target, 11};
  req.set(http::field::host, target);
  auto scheme_end = proxy_url.find("://") + 3;
  auto at = proxy_url.find('@', scheme_end);
  if (at != std::string::npos && at < proxy_url.find('/', scheme_end)) {
    req.set(http::field::proxy_authorization,
            "Basic " + text::base64_encode(proxy_url.substr(scheme_end, at - scheme_end)));
  }
  auto [wec, wn] = co_await http::async_write(socket, req, kTuple);
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // a CONNECT answer has no body
  error_code rec = wec;
  if (!rec)
    std::tie(rec, std::ignore) = co_await http::async_read_header(socket, buffer, parser, kTuple);
  if (rec) {
    co_return failure(PortForwardErrc::proxy_refused,
                      "the HTTP proxy failed during CONNECT " + target + ": " + rec.message());
  }
  auto status = parser.get().result_int();
  if (status != 200 || buffer.size() != 0) {
    co_return failure(PortForwardErrc::proxy_refused, "the proxy answered CONNECT " + target +
                                                          " with HTTP " + std::to_string(status) +
                                                          " " + std::string(parser.get().reason()));
  }
  co_return std::nullopt;
}

}  // namespace

namespace {

std::string api_path(const PortForwardTarget& t, const ServerUrl& url) {
  return url.prefix + "/api/v1/namespaces/" + t.pod_namespace + "/pods/" + t.pod +
         "/portforward?ports=" + std::to_string(t.port);
}

// TCP connect (to the proxy or the server), CONNECT, TLS, and the WebSocket upgrade.
awaitable<std::optional<PortForwardFailure>> connect_and_upgrade(
    PortForward::Impl& impl, const PortForwardTarget& t, const ServerUrl& url,
    const std::optional<ServerUrl>& proxy, const std::string& proxy_url) {
  auto server = url.host_port();
  auto& socket = beast::get_lowest_layer(impl.ws);
  const auto& dial = proxy ? *proxy : url;
  tcp::resolver resolver(socket.get_executor());
  auto [rec, endpoints] =
      co_await resolver.async_resolve(dial.host, std::to_string(dial.port), kTuple);
  error_code ec = rec;
  if (!ec) std::tie(ec, std::ignore) = co_await asio::async_connect(socket, endpoints, kTuple);
  if (ec) {
    co_return failure(ec, "cannot connect to " +
                              std::string(proxy ? "the proxy " : "the API server ") +
                              dial.host_port() + ": " + ec.message());
  }
  socket.set_option(tcp::no_delay(true), ec);
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  if (proxy) {
    auto refused = co_await tunnel_through_proxy(socket, proxy_url, server);
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
  std::optional<ServerUrl> proxy;
  if (!proxy_url.empty()) {
    auto scheme_end = proxy_url.find("://");
    auto at = proxy_url.find('@');
    auto bare = proxy_url;  // without user:password@, which goes into Proxy-Authorization
    if (scheme_end != std::string::npos && at != std::string::npos && at > scheme_end) {
      bare.erase(scheme_end + 3, at - scheme_end - 2);
    }
    proxy = detail::parse_server_url(bare, /*default_tls=*/false);
    if (!proxy || proxy->scheme != "http") {
      co_return failure(PortForwardErrc::bad_target,
                        "the proxy URL '" + bare +
                            "' is not http://HOST:PORT (https and "
                            "socks5 proxies are not supported for port-forward)");
    }
  }
  ssl::context tls(ssl::context::tls_client);
  if (auto bad = configure_tls(tls, t)) co_return *bad;

  auto impl = std::make_unique<Impl>(tcp::socket(ex), std::move(tls));
  impl->port = t.port;
  impl->description = what + " via " + url->host_port();
  auto& socket = beast::get_lowest_layer(impl->ws);
  bool timed_out = false;
  asio::steady_timer watchdog(ex, t.timeout);  // declared after impl: destroyed first
  watchdog.async_wait([&socket, &timed_out](error_code ec) {
    if (ec) return;
    timed_out = true;
    socket.close(ec);
  });
  auto failed = co_await connect_and_upgrade(*impl, t, *url, proxy, proxy_url);
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
