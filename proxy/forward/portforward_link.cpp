#include "proxy/forward/portforward_link.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace lpk::proxy {

namespace asio = boost::asio;

PortForwardLink::PortForwardLink(std::unique_ptr<kube::PortForward> forward)
    : forward_(std::move(forward)) {}

asio::awaitable<tunnel::Link::Result> PortForwardLink::read_some(asio::mutable_buffer buffer) {
  auto [ec, n] = co_await forward_->read_some(buffer);
  // The session only sees an error code; the server's own words (a refused pod port, a broken
  // frame) go to the log once.
  // A dialer retrying the same failure would repeat it every few seconds: the same text as the
  // last one reported goes to debug (one io thread: the static needs no lock).
  static std::string last_reported;
  if (ec && !reported_ && !forward_->error_text().empty()) {
    reported_ = true;
    auto text = forward_->describe() + ": " + forward_->error_text();
    if (text != last_reported) {
      spdlog::warn("{}", text);
      last_reported = text;
    } else {
      spdlog::debug("{}", text);
    }
  }
  co_return Result{ec, n};
}

asio::awaitable<tunnel::Link::Result> PortForwardLink::write(
    std::span<const asio::const_buffer> buffers) {
  co_return co_await forward_->write(buffers);
}

namespace {

// Credentials::current() may run an exec plugin and block; it runs on this thread instead.
asio::awaitable<kube::Credentials::Material> current_credentials(kube::Credentials& credentials) {
  static asio::thread_pool blocking(1);
  co_return co_await asio::co_spawn(
      blocking,
      [&credentials]() -> asio::awaitable<kube::Credentials::Material> {
        co_return credentials.current();
      },
      asio::use_awaitable);
}

bool is_fatal(const kube::PortForwardFailure& f) {
  using kube::PortForwardErrc;
  return f.code == PortForwardErrc::bad_target || f.code == PortForwardErrc::subprotocol_refused ||
         f.code == PortForwardErrc::subprotocol_mismatch;
}

using DialedLink = tunnel::Result<std::unique_ptr<tunnel::Link>>;

// Arguments by value: the coroutine must not point into the dialer that made it.
asio::awaitable<DialedLink> dial_pod(kube::RestConfig config, kube::Credentials& credentials,
                                     std::string ns, std::string pod, std::uint16_t port) {
  auto executor = co_await asio::this_coro::executor;
  for (int attempt = 0;; ++attempt) {
    kube::Credentials::Material auth;
    try {
      auth = co_await current_credentials(credentials);
    } catch (const std::exception& e) {  // the exec plugin failed: kube's blocking layer throws
      co_return tunnel::Problem{make_error_code(tunnel::Error::peer_went_away), e.what()};
    }
    auto target = kube::portforward_target(config, auth, ns, pod, port);
    auto opened = co_await kube::PortForward::open(executor, target);
    if (opened) co_return std::make_unique<PortForwardLink>(std::move(*opened));
    const auto& failure = opened.error();
    if (attempt == 0 && failure.http_status == 401 && credentials.unauthorized()) continue;
    // Retrying cannot fix a bad URL or PEM or a refused subprotocol: the client stops.
    auto code = is_fatal(failure) ? make_error_code(tunnel::Error::link_misconfigured)
                                  : boost::system::error_code(failure.code);
    co_return tunnel::Problem{code, failure.message};
  }
}

}  // namespace

tunnel::LinkDialer portforward_link_dialer(const kube::RestConfig& config, kube::Credentials& credentials,
                                   std::string pod_namespace, std::string pod, std::uint16_t port) {
  auto name = "pod " + pod_namespace + "/" + pod + " port " + std::to_string(port);
  return {name, [config, &credentials, pod_namespace, pod, port]() {
            return dial_pod(config, credentials, pod_namespace, pod, port);
          }};
}

}  // namespace lpk::proxy
