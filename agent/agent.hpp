#pragma once
// The cluster end of the tunnel. Listens for the tunnel on loopback only (a pod port-forward
// reaches the pod's localhost; other pods cannot reach it), keeps one active session (a newer
// proxy replaces the older; the same proxy on a new link resumes it), dials targets for streams the proxy opens (names under lpk.internal are
// the agent's own services), and turns connections to the served ports into streams toward
// the proxy.
//
// Threading: everything runs on the executor given; stop() is idempotent.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/services.hpp"
#include "proxy/tunnel/console_line.hpp"
#include "proxy/tunnel/session.hpp"

namespace lpk::agent {

/// The stdout lines lpk-agent prints once it listens (tunnel/console_line.hpp explains the
/// contract; `lpk-agent --console-lines` prints them).
inline constexpr tunnel::ConsoleLine kTunnelLine{"tunnel", "tunnel {}", R"(^tunnel (\S+)$)"};
inline constexpr tunnel::ConsoleLine kServeLine{"serve", "serve {}", R"(^serve (\S+)$)"};

struct AgentOptions {
  boost::asio::ip::tcp::endpoint tunnel_endpoint{boost::asio::ip::make_address("127.0.0.1"),
                                                 tunnel::kDefaultAgentPort};
  std::vector<std::uint16_t> serve_ports;
  /// Every address, IPv4 and IPv6 (dual stack): pods of IPv6 single-stack and dual-stack
  /// clusters get the service's traffic on their IPv6 address. Where the pod has no IPv6 at
  /// all, the agent serves IPv4 only.
  boost::asio::ip::address serve_address = boost::asio::ip::make_address("::");
  std::chrono::milliseconds connect_timeout{10'000};
  tunnel::SessionOptions session;
  ServiceOptions services;  ///< env.lpk.internal and dns.lpk.internal (agent/services.hpp)
};

class Agent {
 public:
  Agent(boost::asio::any_io_executor executor, AgentOptions options);

  /// Binds the tunnel listener (a Problem when it cannot) and every served port (a port that
  /// cannot be bound is reported in `errors`, one line each, and skipped).
  tunnel::Result<void> bind(std::vector<std::string>& errors);
  boost::asio::ip::tcp::endpoint tunnel_endpoint() const;
  std::vector<boost::asio::ip::tcp::endpoint> serve_endpoints() const;

  void start();
  void stop();

 private:
  boost::asio::awaitable<void> accept_links();
  boost::asio::awaitable<void> serve_link(boost::asio::ip::tcp::socket socket);
  /// Ends a session whose link was lost if no new link resumes it within the grace period.
  boost::asio::awaitable<void> expire_detached(std::shared_ptr<tunnel::Session> session,
                                               std::uint64_t generation);
  boost::asio::awaitable<void> accept_inbound(boost::asio::ip::tcp::acceptor& acceptor,
                                              std::uint16_t port);
  /// Hands `socket` to the session, waiting (up to connect_timeout) for one to come up.
  boost::asio::awaitable<void> open_inbound(boost::asio::ip::tcp::socket socket,
                                            std::uint16_t port);

  boost::asio::any_io_executor executor_;
  AgentOptions options_;
  std::shared_ptr<tunnel::Dialer> dialer_;
  boost::asio::ip::tcp::acceptor tunnel_acceptor_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> inbound_acceptors_;  // stable addresses
  std::vector<std::uint16_t> inbound_ports_;
  std::shared_ptr<tunnel::Session> current_;
  boost::asio::steady_timer session_up_;  // never expires; cancelled when a session comes up
  boost::asio::steady_timer resume_grace_;  // how long a detached session waits
  bool stopped_ = false;
};

}  // namespace lpk::agent
