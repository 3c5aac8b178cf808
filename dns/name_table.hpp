#pragma once
// The names lpk answers: services of the cluster, each with a loopback address chosen by lpk.
// A NameTable is immutable once built; lpk replaces it as a whole (Server::set_table) when the
// cluster changes, so a query always sees one consistent table.

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace lpk::dns {

struct ServicePort {
  std::string name;  ///< empty for unnamed ports (no SRV name then)
  std::uint16_t port = 0;
  std::string protocol = "tcp";  ///< tcp, udp or sctp (any case)
};

struct Endpoint {
  boost::asio::ip::address address;
  std::string hostname;  ///< empty: the dashed address (10-1-2-3) is used, as CoreDNS does
  bool ready = true;
};

struct Service {
  std::string name;
  std::string ns;                                   ///< namespace
  std::optional<boost::asio::ip::address> address;  ///< loopback address for ClusterIP services
  std::vector<ServicePort> ports;
  bool headless = false;
  std::vector<Endpoint> endpoints;  ///< headless services only
  std::string external_name;        ///< ExternalName services only
};

/// What lpk knows; NameTable::build turns it into ready-to-send answers.
struct TableSpec {
  std::string zone = "cluster.local";
  std::string session_namespace = "default";
  std::vector<std::string> namespaces;  ///< known namespaces besides those of the services
  std::vector<Service> services;
  std::uint32_t ttl = 5;  ///< TTL of every answer and of the SOA (negative caching)
};

/// Parses the JSON form used by `lpk-dns --table` (see docs/dns.md). Throws std::invalid_argument
/// with a message naming the bad field.
TableSpec parse_table_json(std::string_view json);

namespace detail {
class TableBuilder;
/// Records of one type, owner written as a pointer to the question name (offset 12) so the
/// same bytes serve every alias and every spelling of the name.
struct RrSet {
  std::uint16_t type = 0;
  std::uint16_t count = 0;
  std::string wire;
};
struct Entry {
  std::vector<RrSet> sets;
  std::string external_target;  ///< lower-cased wire name; ExternalName services only
  bool nxdomain = false;        ///< headless service without a ready endpoint
  const RrSet* find(std::uint16_t type) const {
    for (const auto& s : sets)
      if (s.type == type) return &s;
    return nullptr;
  }
};
}  // namespace detail

class NameTable {
 public:
  /// Builds every answer once. Throws std::invalid_argument on a name that is not a valid DNS
  /// name. The result is shared read-only; it is safe to read from any thread.
  static std::shared_ptr<const NameTable> build(const TableSpec& spec);

  /// Entry for a lower-cased wire name (with its terminating zero), or nullptr.
  const detail::Entry* find(std::string_view lower_wire) const {
    auto it = names_.find(std::string(lower_wire));
    return it == names_.end() ? nullptr : &it->second;
  }
  const detail::Entry* find(const std::string& lower_wire) const {
    auto it = names_.find(lower_wire);
    return it == names_.end() ? nullptr : &it->second;
  }
  bool is_namespace(std::string_view lower_label) const {
    return namespaces_.count(std::string(lower_label)) != 0;
  }
  const std::string& zone_wire() const { return zone_wire_; }
  const std::string& session_namespace() const { return session_ns_; }
  /// The zone's SOA record in full wire form (owner = zone), for negative answers.
  const std::string& soa_record() const { return soa_record_; }
  std::uint32_t ttl() const { return ttl_; }
  std::size_t size() const { return names_.size(); }

 private:
  NameTable() = default;
  friend class detail::TableBuilder;
  std::unordered_map<std::string, detail::Entry> names_;
  std::unordered_set<std::string> namespaces_;
  std::string zone_wire_;
  std::string session_ns_;
  std::string soa_record_;
  std::uint32_t ttl_ = 5;
};

}  // namespace lpk::dns
