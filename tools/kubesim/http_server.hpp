#pragma once
// HTTPS front door: TLS (server certificate, optional client certificates from our CA),
// authentication (bearer token or verified client certificate; 401 Status otherwise), and
// an HTTP/1.1 request loop handing each request to a handler. Knows nothing of Kubernetes
// resources. Single-threaded on the io_context it is given.

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace lpk::kubesim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Request = http::request<http::string_body>;

struct Identity {
  std::string user;
  std::vector<std::string> groups;
};

/// Serves one authenticated request. Returns whether the connection may serve another.
/// The handler may take the stream over (long watches, WebSocket upgrades) and return false.
using Handler = std::function<asio::awaitable<bool>(Request&, TlsStream&, const Identity&)>;

struct TlsFiles {
  std::string server_cert_pem;
  std::string server_key_pem;
  std::string client_ca_pem;
};

class HttpsServer {
 public:
  HttpsServer(asio::io_context& io, const TlsFiles& tls, std::string token, Handler handler);

  /// Binds and starts accepting. Throws on a bind failure (port in use).
  void listen(const asio::ip::tcp::endpoint& ep);
  uint16_t port() const { return port_; }
  /// Stops accepting and closes every connection in flight (their coroutines then end).
  void stop();
  /// What an API server's rolling restart does to its clients: closes the listening socket and
  /// every connection (watches, port-forwards, logs), then listens again on the same address
  /// after `down_for` (connections meanwhile are refused). `asking`, the connection whose
  /// request ordered it, is closed once its response is written. Returns the connections
  /// closed now.
  size_t restart(std::chrono::milliseconds down_for, const TlsStream* asking = nullptr);
  /// Connections being served now.
  size_t connections() const { return live_->size(); }
  /// Accepts bearer tokens other than the admin token (service-account JWTs): returns the
  /// identity, or nullopt for a token that is refused (401).
  void set_token_authenticator(std::function<std::optional<Identity>(const std::string&)> f) {
    token_auth_ = std::move(f);
  }

 private:
  asio::awaitable<void> accept_loop();
  void listen_again();
  asio::awaitable<void> serve(asio::ip::tcp::socket sock);
  bool authenticate(const Request& req, TlsStream& stream, Identity& who) const;

  asio::io_context& io_;
  asio::ssl::context ssl_;
  std::string token_;
  std::function<std::optional<Identity>(const std::string&)> token_auth_;
  Handler handler_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  asio::ip::tcp::endpoint endpoint_;  // where listen() bound, for restart()
  asio::steady_timer relisten_;
  bool stopped_ = false;
  // Bumped by restart(): a connection accepted before it ends after its current request.
  uint64_t generation_ = 0;
  // Shared with the connection coroutines, which may outlive the server if the io_context
  // is destroyed with them suspended.
  std::shared_ptr<std::set<beast::tcp_stream*>> live_ =
      std::make_shared<std::set<beast::tcp_stream*>>();
};

/// Writes a complete JSON response (Content-Type application/json).
asio::awaitable<void> write_json(
    TlsStream& stream, const Request& req, http::status code, const std::string& body,
    bool keep_alive, const std::vector<std::pair<std::string, std::string>>& headers = {});

// Every write to a client goes through the functions below as plain bytes. Each distinct buffer
// sequence handed to asio::async_write on an ssl_stream instantiates the whole TLS write
// machinery, which costs GCC tens of seconds of code generation per coroutine file; here it is
// instantiated once. Each returns false when the client is gone.

/// A whole response, serialized as it would be on the wire.
asio::awaitable<bool> write_response(TlsStream& stream, const http::response<http::string_body>& res);
/// The status line and headers of a response whose body follows in chunks (res.chunked(true)).
asio::awaitable<bool> write_head(TlsStream& stream, const http::response_header<>& head);
/// One chunk of a chunked body; an empty `data` writes nothing (it would end the body).
asio::awaitable<bool> write_chunk(TlsStream& stream, std::string_view data);
/// The last chunk, which ends a chunked body.
asio::awaitable<bool> write_last_chunk(TlsStream& stream);
/// Resolves once the client closes its side (or sends anything, which a streamed response
/// such as a watch or a followed log never expects).
asio::awaitable<void> wait_for_close(TlsStream& stream);

}  // namespace lpk::kubesim
