#pragma once
// Listening sockets for both ends: the proxy's service listeners and the agent's tunnel and
// served ports are opened the same way and fail with the same kind of one-line message.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <string>

#include "proxy/tunnel/error.hpp"

namespace lpk::tunnel {

/// What to tell a person for the usual causes, after the cause itself. Each caller knows its
/// own remedy ("map the service to another port", "drop it from --serve").
struct BindHints {
  std::string in_use = "stop the program holding it";
  std::string privileged = "run with CAP_NET_BIND_SERVICE or use a port of 1024 or more";
  std::string not_here = "use an address of this machine";
};

/// One line: "cannot listen on ADDR:PORT: <cause>; <hint>". The port-in-use cause names the
/// `ss` command that shows who holds the port.
std::string describe_bind_error(const boost::asio::ip::tcp::endpoint& endpoint,
                                const boost::system::error_code& ec, const BindHints& hints = {});

/// Opens, binds (SO_REUSEADDR) and listens on `endpoint` with the system's largest backlog. The
/// Problem carries the socket error and describe_bind_error's line.
Result<boost::asio::ip::tcp::acceptor> open_listener(const boost::asio::any_io_executor& executor,
                                                     const boost::asio::ip::tcp::endpoint& endpoint,
                                                     const BindHints& hints = {});

/// `ADDR:PORT`, with an IPv6 address in brackets.
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& endpoint);

/// True for the errors of accept() that mean "out of file descriptors" (EMFILE, ENFILE).
bool out_of_descriptors(const boost::system::error_code& ec);

/// Load shedding when the process is out of file descriptors. The kernel keeps completing
/// handshakes into the listen backlog while accept() fails, so clients would wait for a server
/// that never reads them (until their own timeout, a minute for many). A reserve descriptor
/// makes room to accept each pending connection and reset it at once, so that clients see the
/// refusal; and one warning every few seconds says how many went, not one per failed accept.
/// One per event loop (not thread-safe).
class DescriptorShedder {
 public:
  DescriptorShedder();
  ~DescriptorShedder();
  DescriptorShedder(const DescriptorShedder&) = delete;
  DescriptorShedder& operator=(const DescriptorShedder&) = delete;

  /// Accepts and resets every connection pending on `acceptor`; returns how many. Then
  /// reports (rate limited) that connections for `what` were refused.
  std::size_t shed(boost::asio::ip::tcp::acceptor& acceptor, const std::string& what);

 private:
  void report(const std::string& what, std::size_t count);

  int reserve_ = -1;
  std::size_t unreported_ = 0;
  std::chrono::steady_clock::time_point last_report_{};
};

}  // namespace lpk::tunnel
