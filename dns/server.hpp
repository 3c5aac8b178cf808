#pragma once
// The stub DNS server: UDP and TCP on one loopback address and port chosen by the caller.
// Answers from the NameTable and the forwarding cache are written in the same pass that read
// the query (recvmmsg/sendmmsg batches on UDP); the rest goes to the Upstream or the
// ClusterResolver and is answered when they reply.
//
// Threading: everything runs on the io_context's single thread; call every member from it.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <memory>

#include "dns/cluster_resolver.hpp"
#include "dns/name_table.hpp"
#include "dns/upstream.hpp"

namespace lpk::dns {

namespace detail {
class Engine;
class UdpFront;
class TcpFront;
struct EngineStats;
}  // namespace detail

struct ServerOptions {
  boost::asio::ip::address address = boost::asio::ip::make_address("127.0.0.1");
  std::uint16_t port = 0;  ///< 0: an ephemeral port, the same for UDP and TCP
  std::chrono::milliseconds tcp_idle_timeout{10000};  ///< silent or non-reading TCP clients
  std::chrono::milliseconds cluster_timeout{2000};    ///< ClusterResolver gets this long
  std::size_t max_tcp_connections = 256;
  std::size_t max_tcp_in_flight = 64;  ///< per connection; reading pauses beyond it
};

class Server {
 public:
  /// `upstream` and `cluster` may be null (then: SERVFAIL for forwarded names, NXDOMAIN for
  /// unknown cluster names). Both must outlive the server.
  Server(boost::asio::io_context& io, ServerOptions opts, std::shared_ptr<const NameTable> table,
         Upstream* upstream = nullptr, ClusterResolver* cluster = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds UDP and TCP and starts serving. Throws boost::system::system_error (address in use,
  /// permission denied for port 53 without CAP_NET_BIND_SERVICE).
  void start();

  /// Replaces the table; queries after this call see the new one, queries already waiting
  /// on the upstream are unaffected.
  void set_table(std::shared_ptr<const NameTable> table);
  std::shared_ptr<const NameTable> table() const;

  /// The bound address and port (valid after start()).
  boost::asio::ip::udp::endpoint local_endpoint() const;
  const detail::EngineStats& stats() const;

  /// Closes the sockets and drops queries still waiting. Idempotent.
  void stop();

 private:
  boost::asio::io_context& io_;
  ServerOptions opts_;
  std::shared_ptr<detail::Engine> engine_;
  std::shared_ptr<detail::UdpFront> udp_;
  std::shared_ptr<detail::TcpFront> tcp_;
};

}  // namespace lpk::dns
