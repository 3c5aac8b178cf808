#include "tools/kubesim/http_server.hpp"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "tools/kubesim/coro.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

HttpsServer::HttpsServer(asio::io_context& io, const TlsFiles& tls, std::string token,
                         Handler handler)
    : io_(io),
      ssl_(asio::ssl::context::tls_server),
      token_(std::move(token)),
      handler_(std::move(handler)),
      acceptor_(io),
      relisten_(io) {
  ssl_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  ssl_.use_certificate_chain(asio::buffer(tls.server_cert_pem));
  ssl_.use_private_key(asio::buffer(tls.server_key_pem), asio::ssl::context::pem);
  ssl_.add_certificate_authority(asio::buffer(tls.client_ca_pem));
  // Ask for a client certificate but do not require one: tokens are the other way in.
  // A presented certificate that fails verification is recorded and refused per request.
  ssl_.set_verify_mode(asio::ssl::verify_peer);
  ssl_.set_verify_callback([](bool, asio::ssl::verify_context&) { return true; });
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  BIO* bio = BIO_new_mem_buf(tls.client_ca_pem.data(), int(tls.client_ca_pem.size()));
  if (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca)));
    X509_free(ca);
  }
  BIO_free(bio);
  SSL_CTX_set_client_CA_list(ssl_.native_handle(), names);
}

void HttpsServer::listen(const tcp::endpoint& ep) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
  endpoint_ = acceptor_.local_endpoint();
  port_ = endpoint_.port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

void HttpsServer::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  relisten_.cancel();
  // Long watches and port-forwards would otherwise hold their coroutines (and the store
  // listeners they registered) until the client leaves.
  for (auto* s : *live_) s->socket().close(ec);
}

size_t HttpsServer::restart(std::chrono::milliseconds down_for, const TlsStream* asking) {
  ++generation_;
  boost::system::error_code ec;
  acceptor_.close(ec);
  const beast::tcp_stream* spared = asking ? &beast::get_lowest_layer(*asking) : nullptr;
  size_t closed = 0;
  for (auto* s : *live_) {
    if (s == spared) continue;
    s->socket().close(ec);
    ++closed;
  }
  relisten_.expires_after(down_for);  // a second restart while down moves the time
  relisten_.async_wait([this](boost::system::error_code wec) {
    if (!wec && !stopped_) listen_again();
  });
  spdlog::info("kubesim: API server restarting: {} connection(s) closed, listening again in {} ms",
               closed + (spared != nullptr), down_for.count());
  return closed;
}

// The address is ours unless another program took the port while it was free: then try again
// shortly, as a restarting apiserver's bind does.
void HttpsServer::listen_again() {
  boost::system::error_code ec;
  acceptor_.open(endpoint_.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint_, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    spdlog::warn("kubesim: cannot listen on {} again ({}); retrying", endpoint_.port(),
                 ec.message());
    relisten_.expires_after(std::chrono::milliseconds(200));
    relisten_.async_wait([this](boost::system::error_code wec) {
      if (!wec && !stopped_) listen_again();
    });
    return;
  }
  spdlog::info("kubesim: API server listening again on port {}", endpoint_.port());
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

namespace {

// Registers a connection in the live set for its whole life.
class LiveGuard {
 public:
  LiveGuard(std::shared_ptr<std::set<beast::tcp_stream*>> live, beast::tcp_stream* s)
      : live_(std::move(live)), s_(s) {
    live_->insert(s_);
  }
  ~LiveGuard() { live_->erase(s_); }
  LiveGuard(const LiveGuard&) = delete;
  LiveGuard& operator=(const LiveGuard&) = delete;

 private:
  std::shared_ptr<std::set<beast::tcp_stream*>> live_;
  beast::tcp_stream* s_;
};

}  // namespace

awaitable<void> HttpsServer::accept_loop() {
  const uint64_t generation = generation_;  // a restart's new listener has its own loop
  while (acceptor_.is_open() && generation == generation_) {
    auto [ec, sock] = co_await acceptor_.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    boost::system::error_code opt_ec;
    sock.set_option(tcp::no_delay(true), opt_ec);
    if (stopped_ || generation != generation_) co_return;
    asio::co_spawn(io_, serve(std::move(sock)), asio::detached);
  }
}

// In the apiserver's order (its union authenticator returns the first success): a client
// certificate our CA signed, then a bearer token (the admin token, then service-account
// tokens). A bearer token nobody accepts is a 401.
bool HttpsServer::authenticate(const Request& req, TlsStream& stream, Identity& who) const {
  SSL* ssl = stream.native_handle();
  if (X509* peer = SSL_get1_peer_certificate(ssl)) {
    bool ok = SSL_get_verify_result(ssl) == X509_V_OK;
    if (ok) {
      char cn[256] = {0};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
      who = {cn, {"system:masters", "system:authenticated"}};
    }
    X509_free(peer);
    if (ok) return true;
  }
  auto auth = req.find(http::field::authorization);
  if (auth == req.end()) return false;
  std::string_view v = auth->value();
  if (v.substr(0, 7) != "Bearer ") return false;
  if (v.substr(7) == token_) {
    who = {"kubesim-token", {"system:masters", "system:authenticated"}};
    return true;
  }
  if (!token_auth_) return false;
  auto id = token_auth_(std::string(v.substr(7)));
  if (id) who = *id;
  return id.has_value();
}

awaitable<void> HttpsServer::serve(tcp::socket sock) {
  TlsStream stream(std::move(sock), ssl_);
  LiveGuard guard(live_, &beast::get_lowest_layer(stream));
  const uint64_t generation = generation_;
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
  if (hec) co_return;
  beast::flat_buffer buf;
  for (;;) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::minutes(5));
    http::request_parser<http::string_body> parser;
    parser.body_limit(32 * 1024 * 1024);
    auto [rec, n] = co_await http::async_read(stream, buf, parser, kTuple);
    if (rec) break;
    Request req = parser.release();
    Identity who;
    bool keep = req.keep_alive();
    if (!authenticate(req, stream, who)) {
      ApiError e(401, "Unauthorized", "Unauthorized");
      co_await write_json(stream, req, http::status::unauthorized, e.status().dump(), keep);
    } else {
      beast::get_lowest_layer(stream).expires_never();
      try {
        keep = co_await handler_(req, stream, who) && keep;
      } catch (const std::exception& ex) {
        spdlog::warn("kubesim: {} {} failed: {}", std::string(req.method_string()),
                     std::string(req.target()), ex.what());
        keep = false;
      }
    }
    if (!keep || stopped_ || generation != generation_) break;
  }
  if (stopped_) co_return;
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  co_await stream.async_shutdown(kTuple);
}

awaitable<void> write_json(TlsStream& stream, const Request& req, http::status code,
                           const std::string& body, bool keep_alive,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
  http::response<http::string_body> res{code, req.version()};
  res.set(http::field::content_type, "application/json");
  res.set("Audit-Id", "kubesim");
  for (const auto& [k, v] : headers) res.set(k, v);
  res.keep_alive(keep_alive);
  if (req.method() != http::verb::head) res.body() = body;
  res.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(60));
  co_await write_response(stream, res);
  beast::get_lowest_layer(stream).expires_never();
}

namespace {

awaitable<bool> write_bytes(TlsStream& stream, std::string_view bytes) {
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(bytes), kTuple);
  co_return !ec;
}

}  // namespace

awaitable<bool> write_response(TlsStream& stream, const http::response<http::string_body>& res) {
  std::ostringstream wire;
  wire << res;
  co_return co_await write_bytes(stream, wire.str());
}

awaitable<bool> write_head(TlsStream& stream, const http::response_header<>& head) {
  std::ostringstream wire;
  wire << head;  // the start line, the fields and the blank line that ends them
  co_return co_await write_bytes(stream, wire.str());
}

awaitable<bool> write_chunk(TlsStream& stream, std::string_view data) {
  if (data.empty()) co_return true;
  std::string wire = fmt::format("{:x}\r\n", data.size());
  wire.append(data);
  wire += "\r\n";
  co_return co_await write_bytes(stream, wire);
}

awaitable<bool> write_last_chunk(TlsStream& stream) {
  co_return co_await write_bytes(stream, "0\r\n\r\n");
}

awaitable<void> wait_for_close(TlsStream& stream) {
  char byte;
  co_await stream.async_read_some(asio::buffer(&byte, 1), kTuple);
}

}  // namespace lpk::kubesim
