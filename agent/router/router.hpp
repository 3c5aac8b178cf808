#pragma once
// `lpk-agent router`: the request router of header-routed intercepts (issue 14,
// docs/router.md). Accepts on each service port; a request whose routing header names a
// session goes to that session's agent pod, everything else to the original pods (round robin),
// or to a fallback address when none is known. HTTP/1.1 and HTTP/2 are routed per request (an
// HTTP/2 stream: detail/h2_mux.hpp), anything else passes unchanged to an original pod. An
// admin port answers GET /healthz and GET /routes.
//
// Threading: everything runs on the executor given (one thread); update() and stop() too.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/router/route_table.hpp"
#include "proxy/tunnel/console_line.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::router {

/// The stdout lines of `lpk-agent router` (tunnel/console_line.hpp explains the contract): one
/// `router ADDR:PORT` per --port, in their order, then `router-admin ADDR:PORT`.
inline constexpr tunnel::ConsoleLine kRouterLine{"router", "router {}", R"(^router (\S+)$)"};
inline constexpr tunnel::ConsoleLine kRouterAdminLine{"router_admin", "router-admin {}",
                                                      R"(^router-admin (\S+)$)"};

/// One --port TP[=FALLBACK_HOST:PORT].
struct PortSpec {
  std::uint16_t port = 0;
  std::string fallback_host;  ///< empty: no fallback (the client's connection is closed)
  std::uint16_t fallback_port = 0;
};

struct RouterOptions {
  std::string service;
  std::vector<PortSpec> ports;
  std::uint16_t admin_port = 15090;
  /// Dual stack, as the agent serves; IPv4 alone where the kernel has no IPv6.
  boost::asio::ip::address address = boost::asio::ip::make_address("::");
  /// How long a connection may stay silent (or send a partial request line) before it is
  /// taken for a protocol whose server speaks first, and relayed opaque.
  std::chrono::milliseconds sniff_wait{300};
  std::chrono::milliseconds connect_timeout{5'000};
  /// An HTTP/1 connection that waits longer than this for its next request is closed, as
  /// Envoy's HTTP idle timeout (1 h by default) does: a client gone without a FIN (its node
  /// died) would otherwise hold it for ever. Zero: never.
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};
};

namespace detail {
struct Shared;
}

class Router {
 public:
  Router(boost::asio::any_io_executor executor, RouterOptions options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  /// Binds every port and the admin port; a Problem names the first that cannot be bound.
  tunnel::Result<void> bind();
  /// The bound service ports, in --port order, and the admin port.
  std::vector<boost::asio::ip::tcp::endpoint> port_endpoints() const;
  boost::asio::ip::tcp::endpoint admin_endpoint() const;

  void start();
  /// Replaces the routes (the pod watch's or the routes file's); /healthz turns 200.
  void update(RouteSet routes);
  /// Stops accepting (the admin port too, so readiness fails) and lets the connections end:
  /// an HTTP/1 connection between requests closes at once, one within an exchange after it.
  /// `on_drained` is called once no connection is left (at once when none is). An HTTP/2
  /// client gets a GOAWAY and its connection closes once its streams end. Opaque and upgraded
  /// connections run on until they end or stop() closes them.
  void drain(std::function<void()> on_drained);
  /// Closes the listeners and every connection; idempotent.
  void stop();

 private:
  boost::asio::any_io_executor executor_;
  std::shared_ptr<detail::Shared> shared_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;  // --port order
  std::unique_ptr<boost::asio::ip::tcp::acceptor> admin_;
};

}  // namespace lpk::router
