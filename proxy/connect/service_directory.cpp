#include "proxy/connect/service_directory.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/error.hpp>
#include <algorithm>
#include <cstdio>
#include <set>

#include "kube/text.hpp"

namespace lpk::proxy {

using nlohmann::json;
namespace asio = boost::asio;

namespace {

std::string key_of(const json& service) {
  const auto& meta = service["metadata"];
  return meta.value("namespace", "") + "/" + meta.value("name", "");
}

bool is_external_name(const json& service) {
  return service["spec"].value("type", "") == "ExternalName";
}

struct ForwardedPort {
  std::uint16_t port;
  bool udp;
};

/// Ports of a service as lpk forwards them: TCP as streams, UDP as datagram flows (SCTP is
/// skipped).
std::vector<ForwardedPort> forwarded_ports(const json& service) {
  std::vector<ForwardedPort> ports;
  for (const auto& p : service["spec"].value("ports", json::array())) {
    const auto protocol = p.value("protocol", "TCP");
    if (protocol != "TCP" && protocol != "UDP") continue;
    ports.push_back({static_cast<std::uint16_t>(p.value("port", 0)), protocol == "UDP"});
  }
  return ports;
}

}  // namespace

ServiceDirectory::ServiceDirectory(Forwarder& forwarder, AddressPool& pool,
                                   std::string session_namespace, std::string zone)
    : forwarder_(forwarder),
      pool_(pool),
      session_namespace_(std::move(session_namespace)),
      zone_(std::move(zone)) {}

bool ServiceDirectory::bind_ports(const std::string& key, Entry& entry) {
  const auto& meta = entry.service["metadata"];
  auto name = meta.value("name", "") + "." + meta.value("namespace", "");
  // Absolute (trailing dot): the agent's resolver then asks for this one name, not first the
  // three search-list expansions a name with fewer than ndots:5 dots gets in a pod.
  auto target_host = name + ".svc." + zone_ + ".";
  for (auto [port, udp] : forwarded_ports(entry.service)) {
    tunnel::Target target{tunnel::Target::Kind::name, target_host, port, udp};
    tunnel::Problem failed;
    if (udp) {
      auto bound = forwarder_.listen_udp(asio::ip::udp::endpoint(entry.address, port), target);
      if (bound) entry.bound_udp.push_back(*bound);
      if (!bound) failed = bound.error();
    } else {
      auto bound = forwarder_.listen(asio::ip::tcp::endpoint(entry.address, port), target);
      if (bound) entry.bound.push_back(*bound);
      if (!bound) failed = bound.error();
    }
    if (failed.code == asio::error::address_in_use) return false;
    if (failed.code) {
      spdlog::warn("service {}: {}", key, failed.message);
      entry.problems.push_back(failed.message);
    }
  }
  return true;
}

void ServiceDirectory::open_listeners(const std::string& key, Entry& entry) {
  if (is_external_name(entry.service)) return;
  const auto& meta = entry.service["metadata"];
  auto name = meta.value("name", "") + "." + meta.value("namespace", "");
  // A port of the address is held by a program that is not this session (an lpk session
  // without slots, a server bound there by hand): the name must not lead the child to it, so
  // the service moves to another address, and says so.
  for (int moves = 0; !bind_ports(key, entry); ++moves) {
    close_listeners(entry);
    auto held = entry.address.to_string();
    auto next = moves < kMaxMoves ? pool_.move_away(name) : std::nullopt;
    if (!next) {
      entry.problems.push_back(held + " is held by another program and no free address is left");
      std::fprintf(stderr, "lpk-proxy: service %s: %s; it gets no listener\n", key.c_str(),
                   entry.problems.back().c_str());
      return;
    }
    entry.address = asio::ip::address(*next);
    std::fprintf(stderr, "lpk-proxy: service %s: %s is held by another program; it moves to %s\n",
                 key.c_str(), held.c_str(), entry.address.to_string().c_str());
  }
}

void ServiceDirectory::close_listeners(Entry& entry) {
  for (const auto& endpoint : entry.bound) forwarder_.close(endpoint);
  for (const auto& endpoint : entry.bound_udp) forwarder_.close_udp(endpoint);
  entry.bound.clear();
  entry.bound_udp.clear();
  entry.problems.clear();
}

void ServiceDirectory::upsert(const json& service) {
  auto key = key_of(service);
  auto ns = service["metadata"].value("namespace", "");
  if (std::find(namespaces_.begin(), namespaces_.end(), ns) == namespaces_.end()) {
    namespaces_.push_back(ns);
  }
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    // Only a change of ports or type needs new listeners; the address stays the name's.
    if (it->second.service["spec"].value("ports", json()) == service["spec"].value("ports", json()) &&
        is_external_name(it->second.service) == is_external_name(service)) {
      it->second.service = service;
      changed();
      return;
    }
    close_listeners(it->second);
    it->second.service = service;
    open_listeners(key, it->second);
    changed();
    return;
  }
  auto address = pool_.allocate(service["metadata"].value("name", "") + "." + ns);
  if (!address) {
    spdlog::warn("service {}: the address pool is full; widen --pool", key);
    return;
  }
  Entry entry{service, asio::ip::address(*address), {}, {}, {}};
  open_listeners(key, entry);
  entries_.emplace(key, std::move(entry));
  changed();
}

void ServiceDirectory::remove(const json& service) {
  auto it = entries_.find(key_of(service));
  if (it == entries_.end()) return;
  close_listeners(it->second);
  entries_.erase(it);
  changed();
}

void ServiceDirectory::replace_namespace(const std::string& ns, const json& items) {
  if (std::find(namespaces_.begin(), namespaces_.end(), ns) == namespaces_.end()) {
    namespaces_.push_back(ns);
  }
  std::set<std::string> present;
  for (const auto& service : items) present.insert(key_of(service));
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->first.rfind(ns + "/", 0) == 0 && !present.count(it->first)) {
      close_listeners(it->second);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& service : items) upsert(service);
  changed();
}

void ServiceDirectory::changed() {
  if (on_change) on_change();
}

dns::TableSpec ServiceDirectory::table() const {
  dns::TableSpec spec;
  spec.zone = zone_;
  spec.session_namespace = session_namespace_;
  spec.namespaces = namespaces_;
  for (const auto& [key, entry] : entries_) {
    const auto& meta = entry.service["metadata"];
    const auto& svc_spec = entry.service["spec"];
    dns::Service s;
    s.name = meta.value("name", "");
    s.ns = meta.value("namespace", "");
    if (is_external_name(entry.service)) {
      s.external_name = svc_spec.value("externalName", "");
    } else {
      // Headless services too get one address: their connections go to the service name,
      // which the agent resolves to a ready pod.
      s.address = entry.address;
    }
    for (const auto& p : svc_spec.value("ports", json::array())) {
      s.ports.push_back({p.value("name", ""), static_cast<std::uint16_t>(p.value("port", 0)),
                         text::ascii_lower(p.value("protocol", "TCP"))});
    }
    spec.services.push_back(std::move(s));
  }
  return spec;
}

std::vector<LinkedService> ServiceDirectory::linked_services() const {
  std::vector<LinkedService> linked;
  for (const auto& [key, entry] : entries_) {
    const auto& meta = entry.service["metadata"];
    if (meta.value("namespace", "") != session_namespace_ || is_external_name(entry.service)) {
      continue;
    }
    LinkedService s{meta.value("name", ""), entry.address, {}};
    for (const auto& p : entry.service["spec"].value("ports", json::array())) {
      s.ports.push_back({p.value("name", ""), static_cast<std::uint16_t>(p.value("port", 0)),
                         p.value("protocol", "TCP")});
    }
    linked.push_back(std::move(s));
  }
  return linked;
}

std::optional<std::string> ServiceDirectory::address_of(const std::string& name,
                                                        const std::string& ns) const {
  auto found = entries_.find(ns + "/" + name);
  if (found == entries_.end()) return std::nullopt;
  return found->second.address.to_string();
}

json ServiceDirectory::describe() const {
  json out = json::array();
  for (const auto& [key, entry] : entries_) {
    json ports = json::array();
    for (const auto& ep : entry.bound) ports.push_back(ep.port());
    json udp_ports = json::array();
    for (const auto& ep : entry.bound_udp) udp_ports.push_back(ep.port());
    const auto& meta = entry.service["metadata"];
    out.push_back({{"name", meta.value("name", "")},
                   {"namespace", meta.value("namespace", "")},
                   {"address", entry.address.to_string()},
                   {"ports", ports},
                   {"udp_ports", udp_ports},
                   {"problems", entry.problems}});
  }
  return out;
}

}  // namespace lpk::proxy
