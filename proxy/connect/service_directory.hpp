#pragma once
// The cluster's services as the developer machine sees them during `connect`: each service of
// the mapped namespaces gets a stable loopback address, a listener per TCP port that carries
// connections to `<svc>.<ns>.svc.<zone>:<port>` through the tunnel, and its names in the stub
// DNS table. Fed by the services watch (a relist replaces a namespace, events update one).
//
// Threading: the io thread only.

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dns/name_table.hpp"
#include "proxy/forward/address_pool.hpp"
#include "proxy/connect/environment.hpp"
#include "proxy/forward/forwarder.hpp"

namespace lpk::proxy {

class ServiceDirectory {
 public:
  ServiceDirectory(Forwarder& forwarder, AddressPool& pool, std::string session_namespace,
                   std::string zone);

  /// A relist of namespace `ns`: services not in `items` go away.
  void replace_namespace(const std::string& ns, const nlohmann::json& items);
  void upsert(const nlohmann::json& service);
  void remove(const nlohmann::json& service);

  /// The stub DNS table for what is known now.
  dns::TableSpec table() const;
  /// The services of the session namespace with their lpk addresses, for rewriting the
  /// service link variables the kubelet gave the container.
  std::vector<LinkedService> linked_services() const;
  /// lpk's address of service `name` of namespace `ns`, if it maps one.
  std::optional<std::string> address_of(const std::string& name, const std::string& ns) const;
  /// For `lpk-proxy status`: every service with its address and listening ports.
  nlohmann::json describe() const;

  /// Called after every change (to refresh the stub DNS table).
  std::function<void()> on_change;

 private:
  struct Entry {
    nlohmann::json service;
    boost::asio::ip::address address;
    std::vector<boost::asio::ip::tcp::endpoint> bound;
    std::vector<boost::asio::ip::udp::endpoint> bound_udp;
    std::vector<std::string> problems;  // ports that could not be bound, one line each
  };
  /// Binds the service's ports on `entry.address`; false as soon as a port there is held by
  /// another program (what was bound before it stays in entry.bound).
  bool bind_ports(const std::string& key, Entry& entry);
  /// Binds the service's ports, moving it to another address while its own is held elsewhere.
  void open_listeners(const std::string& key, Entry& entry);
  static constexpr int kMaxMoves = 8;
  void close_listeners(Entry& entry);
  void changed();

  Forwarder& forwarder_;
  AddressPool& pool_;
  std::string session_namespace_;
  std::string zone_;
  std::map<std::string, Entry> entries_;  // "<ns>/<name>"
  std::vector<std::string> namespaces_;
};

}  // namespace lpk::proxy
