#pragma once
// The stub DNS embedded in `lpk-proxy run --dns ADDR:PORT`: answers the mapped service names
// with their pool addresses (as cluster DNS would answer a pod in the session's namespace)
// and forwards every other name to the machine's original resolvers.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "dns/cluster_resolver.hpp"
#include "dns/name_table.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::dns {
class Server;
class Upstream;
}  // namespace lpk::dns

namespace lpk::proxy {

struct StubDnsOptions {
  boost::asio::ip::udp::endpoint listen;
  std::string zone = "cluster.local";
  std::string session_namespace = "default";
  std::string resolv_conf;  // empty: the machine's original resolvers (see dns/system_resolver)
};

/// A service name of the map as the stub should know it: `svc` (session namespace) or
/// `svc.ns`, with the address and ports it listens on.
struct NamedService {
  std::string name;
  boost::asio::ip::address address;
  std::vector<std::uint16_t> ports;
};

/// Pure: the name table for `services`.
dns::TableSpec table_for(const std::vector<NamedService>& services, const StubDnsOptions& options);

class StubDns {
 public:
  /// Binds UDP and TCP (throws boost::system::system_error when it cannot).
  StubDns(boost::asio::io_context& io, const StubDnsOptions& options,
          const std::vector<NamedService>& services);
  /// The same with a full table (what connect keeps current from the cluster) and the
  /// resolver for cluster names the table lacks (null: NXDOMAIN). `cluster` must outlive this.
  StubDns(boost::asio::io_context& io, const StubDnsOptions& options, const dns::TableSpec& table,
          dns::ClusterResolver* cluster);
  /// Whether `listen` can be bound (UDP and TCP) now: a Problem naming the address when it
  /// cannot, so that a command can refuse before it changes anything.
  static tunnel::Result<void> check_available(const boost::asio::ip::udp::endpoint& listen);
  /// Replaces the table atomically; queries already in flight finish with the old one.
  void set_table(const dns::TableSpec& table);
  ~StubDns();
  boost::asio::ip::udp::endpoint endpoint() const;
  void stop();

 private:
  std::unique_ptr<dns::Upstream> upstream_;
  std::unique_ptr<dns::Server> server_;
};

}  // namespace lpk::proxy
