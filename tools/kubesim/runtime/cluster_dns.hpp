#pragma once
// Cluster DNS on the kube-dns ClusterIP inside the node namespace, answered by the lpk::dns
// library from a NameTable rebuilt whenever services or endpoints change. Names outside the
// cluster zone get SERVFAIL: kubesim never forwards to the machine's resolver.
//
// It answers on a thread of its own, as CoreDNS runs in pods of its own: the API server and
// the kubelet share kubesim's main thread and block it at times (creating a network namespace
// waits for `ip`), and a resolver that stalled with them would time out pods' lookups (glibc
// waits 5 s before it asks again). The table is built on the main thread, which owns the store,
// and handed over whole.

#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "dns/cluster_resolver.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::dns {
class Server;
struct TableSpec;
}  // namespace lpk::dns

namespace lpk::kubesim {

class ClusterDns {
 public:
  /// address: the kube-dns ClusterIP (ClusterNetwork::dns_ip).
  ClusterDns(boost::asio::io_context& io, Store& store, std::string address,
             std::string zone = "cluster.local");
  ~ClusterDns();
  /// Binds UDP and TCP port 53 on the address in the node namespace. Throws on failure.
  void start();
  void stop();

 private:
  void rebuild();

  boost::asio::io_context& io_;  // the store's (main) thread: table rebuilds
  Store& store_;
  std::string address_;
  std::string zone_;
  boost::asio::io_context dns_io_{1};  // the server's thread
  std::unique_ptr<dns::ClusterResolver> pods_;  // pod names; before server_, which uses it
  std::unique_ptr<dns::Server> server_;
  std::thread thread_;
  int listener_ = -1;
  bool scheduled_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// The answer to a pod name of the zone, as CoreDNS's `pods insecure` (kubeadm's Corefile)
/// gives it: "<ip with - for . or :>.<namespace>.pod.<zone>." of a namespace that exists is
/// A for an IPv4 address, AAAA for an IPv6 one, NODATA for the other type; anything else is
/// NXDOMAIN. name is absolute, lower case; qtype a DNS type number.
dns::ClusterAnswer pod_answer(const std::string& name, std::uint16_t qtype,
                              const std::string& zone,
                              const std::function<bool(const std::string&)>& namespace_exists);

/// The lpk::dns table for the store's services: ClusterIP A (or AAAA) records, headless services'
/// ready endpoints (with hostnames), named ports for SRV.
dns::TableSpec cluster_table(const Store& store, const std::string& zone);

}  // namespace lpk::kubesim
