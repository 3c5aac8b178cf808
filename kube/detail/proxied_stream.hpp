#pragma once
// The byte stream under the API server's TLS: a TCP socket, or, through an https:// proxy, the
// TLS session with the proxy on that socket (TLS inside TLS). One type for both keeps one
// WebSocket type and one dialing path: the proxy TLS is switched on at run time, after its
// handshake. Beast finds it as the lowest layer (it has no next_layer()), hence the close and
// teardown customisations below.
#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <cstddef>
#include <utility>

namespace lpk::kube::detail {

class ProxiedStream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;
  using lowest_layer_type = boost::asio::ip::tcp::socket::lowest_layer_type;

  /// `proxy_tls` must outlive the stream (client-go verifies the proxy with the cluster's TLS
  /// settings, so it is the same context as the API server's).
  ProxiedStream(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& proxy_tls)
      : tls_(std::move(socket), proxy_tls) {}

  executor_type get_executor() noexcept { return tls_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return tls_.next_layer(); }
  lowest_layer_type& lowest_layer() { return socket(); }
  /// The TLS session with an https:// proxy; handshake it, then call use_proxy_tls().
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket>& proxy_tls() { return tls_; }
  void use_proxy_tls() { over_tls_ = true; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (over_tls_) {
            tls_.async_read_some(b, std::move(handler));
          } else {
            socket().async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (over_tls_) {
            tls_.async_write_some(b, std::move(handler));
          } else {
            socket().async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

 private:
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> tls_;
  bool over_tls_ = false;
};

// Beast's customisation points, found by ADL. The proxy's TLS session ends with the socket: the
// API server's close_notify already went through it, and a proxy waits for nothing more.
inline void beast_close_socket(ProxiedStream& stream) {
  boost::system::error_code ignored;
  stream.socket().close(ignored);
}

inline void teardown(boost::beast::role_type role, ProxiedStream& stream,
                     boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.socket(), ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, ProxiedStream& stream,
                    TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.socket(), std::forward<TeardownHandler>(handler));
}

}  // namespace lpk::kube::detail
