#include "dns/name_table.hpp"

#include <ldns/ldns.h>

#include <stdexcept>

#include "dns/detail/wire.hpp"
#include "kube/text.hpp"

namespace lpk::dns {
namespace detail {
namespace {

std::string must_wire(std::string_view name) {
  auto wire = to_wire(name);
  if (!wire) throw std::invalid_argument("not a valid DNS name: '" + std::string(name) + "'");
  return *wire;
}

using text::ascii_lower;

// Rdata in wire form, rendered by ldns from presentation text (SRV, PTR, CNAME, TXT, SOA).
std::string rdata(std::string_view type, const std::string& text) {
  ldns_rr* rr = nullptr;
  const std::string line = ". 0 IN " + std::string(type) + " " + text;
  if (ldns_rr_new_frm_str(&rr, line.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK) {
    throw std::invalid_argument("cannot build record: " + line);
  }
  ldns_buffer* buf = ldns_buffer_new(256);
  ldns_rr_rdata2buffer_wire(buf, rr);
  std::string out(reinterpret_cast<const char*>(ldns_buffer_begin(buf)), ldns_buffer_position(buf));
  ldns_buffer_free(buf);
  ldns_rr_free(rr);
  return out;
}

std::string address_rdata(const boost::asio::ip::address& a) {
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    return std::string(b.begin(), b.end());
  }
  const auto b = a.to_v6().to_bytes();
  return std::string(b.begin(), b.end());
}

std::string reverse_name(const boost::asio::ip::address& a) {
  std::string out;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    for (int i = 3; i >= 0; --i) out += std::to_string(b[i]) + ".";
    return out + "in-addr.arpa.";
  }
  static const char* kHex = "0123456789abcdef";
  const auto b = a.to_v6().to_bytes();
  for (int i = 15; i >= 0; --i) {
    out += kHex[b[i] & 0xF];
    out += '.';
    out += kHex[b[i] >> 4];
    out += '.';
  }
  return out + "ip6.arpa.";
}

std::string dashed(const boost::asio::ip::address& a) {
  std::string s = a.to_string();
  for (char& c : s)
    if (c == '.' || c == ':') c = '-';
  return s;
}

}  // namespace

class TableBuilder {
 public:
  explicit TableBuilder(const TableSpec& spec) : spec_(spec) {
    table_.ttl_ = spec.ttl;
    table_.zone_wire_ = must_wire(spec.zone);
    zone_ = to_presentation(table_.zone_wire_);
    table_.session_ns_ = ascii_lower(spec.session_namespace);
  }

  std::shared_ptr<const NameTable> build() {
    add_zone_records();
    table_.namespaces_.insert(table_.session_ns_);
    for (const auto& ns : spec_.namespaces) table_.namespaces_.insert(ascii_lower(ns));
    for (const auto& svc : spec_.services) table_.namespaces_.insert(ascii_lower(svc.ns));
    for (const auto& ns : table_.namespaces_) entry(must_wire(ns + ".svc." + zone_));
    for (const auto& svc : spec_.services) add_service(svc);
    return std::shared_ptr<const NameTable>(new NameTable(std::move(table_)));
  }

 private:
  Entry& entry(const std::string& wire) { return table_.names_[wire]; }

  void add_record(Entry& e, std::uint16_t type, const std::string& rd) {
    RrSet* set = nullptr;
    for (auto& s : e.sets)
      if (s.type == type) set = &s;
    if (!set) set = &e.sets.emplace_back(RrSet{type, 0, {}});
    append16(set->wire, kPointerToQuestion);
    append16(set->wire, type);
    append16(set->wire, kClassIn);
    append32(set->wire, spec_.ttl);
    append16(set->wire, static_cast<std::uint16_t>(rd.size()));
    set->wire += rd;
    ++set->count;
  }

  // Adds `rel` (relative to the zone, e.g. "redis.dev.svc") under every name a pod could use:
  // the full name, and the short forms that a pod's search path would complete.
  void add_names(const std::string& full, const std::string& ns_short, bool in_session,
                 const std::function<void(Entry&)>& fill) {
    fill(entry(must_wire(full)));
    fill(entry(must_wire(ns_short + ".svc")));
    fill(entry(must_wire(ns_short)));
    if (in_session) {
      // ns_short ends in ".<ns>"; strip it for the session namespace form.
      fill(entry(must_wire(ns_short.substr(0, ns_short.rfind('.')))));
    }
  }

  void add_zone_records() {
    const std::string soa = "ns.dns." + zone_ + " hostmaster." + zone_ + " 1 7200 1800 86400 " +
                            std::to_string(spec_.ttl);
    Entry& apex = entry(table_.zone_wire_);
    add_record(apex, LDNS_RR_TYPE_SOA, rdata("SOA", soa));
    std::string& rec = table_.soa_record_;
    rec = table_.zone_wire_;
    append16(rec, LDNS_RR_TYPE_SOA);
    append16(rec, kClassIn);
    append32(rec, spec_.ttl);
    const std::string rd = rdata("SOA", soa);
    append16(rec, static_cast<std::uint16_t>(rd.size()));
    rec += rd;
    add_record(entry(must_wire("dns-version." + zone_)), LDNS_RR_TYPE_TXT,
               rdata("TXT", "\"1.1.0\""));
    entry(must_wire("svc." + zone_));
  }

  void add_address(Entry& e, const boost::asio::ip::address& a) {
    add_record(e, a.is_v4() ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA, address_rdata(a));
  }

  void add_ptr(const boost::asio::ip::address& a, const std::string& target) {
    Entry& e = entry(must_wire(reverse_name(a)));
    if (e.sets.empty()) add_record(e, LDNS_RR_TYPE_PTR, rdata("PTR", target));
  }

  void add_service(const Service& svc);

  const TableSpec& spec_;
  NameTable table_;
  std::string zone_;  // presentation, with trailing dot
};

void TableBuilder::add_service(const Service& svc) {
  const std::string name = ascii_lower(svc.name), ns = ascii_lower(svc.ns);
  const std::string short_name = name + "." + ns;
  const std::string full = short_name + ".svc." + zone_;
  const bool in_session = ns == table_.session_ns_;
  if (!svc.external_name.empty()) {
    const std::string target = must_wire(svc.external_name);
    add_names(full, short_name, in_session, [&](Entry& e) {
      add_record(e, LDNS_RR_TYPE_CNAME, target);
      e.external_target = target;
    });
    return;
  }
  struct Host {
    boost::asio::ip::address address;
    std::string fqdn;
  };
  std::vector<Host> hosts;
  if (svc.headless) {
    for (const auto& ep : svc.endpoints) {
      if (!ep.ready) continue;
      const std::string host = ep.hostname.empty() ? dashed(ep.address) : ascii_lower(ep.hostname);
      hosts.push_back({ep.address, host + "." + full});
      add_names(host + "." + full, host + "." + short_name, in_session,
                [&](Entry& e) { add_address(e, ep.address); });
      add_ptr(ep.address, host + "." + full);
    }
    if (hosts.empty()) add_names(full, short_name, in_session, [](Entry& e) { e.nxdomain = true; });
  } else if (svc.address) {
    hosts.push_back({*svc.address, full});
    add_ptr(*svc.address, full);
  }
  add_names(full, short_name, in_session, [&](Entry& e) {
    for (const auto& h : hosts) add_address(e, h.address);
  });
  for (const auto& port : svc.ports) {
    const std::string proto = ascii_lower(port.protocol.empty() ? "tcp" : port.protocol);
    for (const auto& h : hosts) {
      const std::string srv = "0 100 " + std::to_string(port.port) + " " + h.fqdn;
      const std::string rd = rdata("SRV", srv);
      // CoreDNS also answers SRV on the service name itself, one record per port.
      add_names(full, short_name, in_session,
                [&](Entry& e) { add_record(e, LDNS_RR_TYPE_SRV, rd); });
      if (port.name.empty()) continue;
      const std::string prefix = "_" + ascii_lower(port.name) + "._" + proto + ".";
      add_names(prefix + full, prefix + short_name, in_session,
                [&](Entry& e) { add_record(e, LDNS_RR_TYPE_SRV, rd); });
    }
  }
}

}  // namespace detail

std::shared_ptr<const NameTable> NameTable::build(const TableSpec& spec) {
  return detail::TableBuilder(spec).build();
}

}  // namespace lpk::dns
