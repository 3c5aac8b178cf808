#include "dns/resolver.hpp"

#include "dns/detail/wire.hpp"

namespace lpk::dns {
namespace {

using namespace detail;

constexpr std::uint16_t kOurUdpSize = 1232;  // DNS flag day 2020 default

void append(std::vector<std::uint8_t>& out, std::string_view s) {
  out.insert(out.end(), s.begin(), s.end());
}

void append_opt(const Query& q, std::uint8_t ext_rcode, std::vector<std::uint8_t>& out) {
  const std::uint8_t opt[11] = {0,
                                0,
                                kTypeOpt,
                                kOurUdpSize >> 8,
                                kOurUdpSize & 0xFF,
                                ext_rcode,
                                0,
                                static_cast<std::uint8_t>(q.dnssec_ok ? 0x80 : 0),
                                0,
                                0,
                                0};
  out.insert(out.end(), opt, opt + sizeof opt);
}

void write_header(const Query& q, std::uint8_t rcode, bool aa, std::uint16_t qd, std::uint16_t an,
                  std::uint16_t ns, std::uint16_t ar, std::vector<std::uint8_t>& out) {
  out.resize(kHeaderSize);
  put16(out.data(), q.id);
  const std::uint16_t flags = kFlagQr | (q.flags & (0x7800 | kFlagRd | kFlagCd)) | kFlagRa |
                              (aa ? kFlagAa : 0) | (rcode & 0xF);
  put16(out.data() + 2, flags);
  put16(out.data() + 4, qd);
  put16(out.data() + 6, an);
  put16(out.data() + 8, ns);
  put16(out.data() + 10, ar);
}

// Names that are ours by the search-path rules of a pod but absent from the table map to their
// full name in the zone: "x.ns" and "x.ns.svc" for a known namespace.
bool cluster_name(const NameTable& table, const std::string& name, std::string& target) {
  if (is_subdomain(name, table.zone_wire())) {
    target = name;
    return true;
  }
  const int labels = label_count(name);
  if (labels != 2 && labels != 3) return false;
  const std::string_view ns = strip_labels(name, 1);
  if (labels == 3 && strip_labels(ns, 1) != std::string_view("\3svc", 5)) return false;
  const auto ns_len = static_cast<std::uint8_t>(ns[0]);
  if (!table.is_namespace(ns.substr(1, ns_len))) return false;
  target.assign(name, 0, name.size() - 1);
  if (labels == 2) target += "\3svc";
  target += table.zone_wire();
  return true;
}

}  // namespace

ParseStatus parse_query(std::span<const std::uint8_t> p, Query& q) {
  q.packet = p;
  q.name.clear();
  q.question_end = 0;
  q.edns = q.dnssec_ok = false;
  q.udp_size = 512;
  if (p.size() < kHeaderSize) return ParseStatus::kDrop;
  q.id = get16(p.data());
  q.flags = get16(p.data() + 2);
  if (q.flags & kFlagQr) return ParseStatus::kDrop;  // never answer a response: no loops
  if ((q.flags >> 11 & 0xF) != 0) return ParseStatus::kNotImp;
  if (get16(p.data() + 4) != 1) return ParseStatus::kFormErr;
  auto pos = read_question_name(p, kHeaderSize, q.name);
  if (!pos || *pos + 4 > p.size()) return ParseStatus::kFormErr;
  q.qtype = get16(p.data() + *pos);
  q.qclass = get16(p.data() + *pos + 2);
  q.question_end = *pos + 4;
  std::size_t at = q.question_end;
  const unsigned skip = get16(p.data() + 6) + get16(p.data() + 8);
  const unsigned additional = get16(p.data() + 10);
  bool bad_version = false;
  for (unsigned i = 0; i < skip + additional; ++i) {
    auto next = skip_record(p, at);
    if (!next) return ParseStatus::kFormErr;
    if (i >= skip && p[at] == 0 && get16(p.data() + at + 1) == kTypeOpt) {
      if (q.edns) return ParseStatus::kFormErr;  // RFC 6891: more than one OPT
      q.edns = true;
      q.udp_size = std::max<std::uint16_t>(512, get16(p.data() + at + 3));
      bad_version = p[at + 6] != 0;
      q.dnssec_ok = (p[at + 7] & 0x80) != 0;
    }
    at = *next;
  }
  return bad_version ? ParseStatus::kBadVers : ParseStatus::kOk;
}

bool error_response(ParseStatus status, const Query& q, std::vector<std::uint8_t>& out) {
  if (status == ParseStatus::kDrop || status == ParseStatus::kOk) return false;
  if (status == ParseStatus::kBadVers) {
    // BADVERS is extended rcode 16: 1 in the OPT's upper bits, 0 in the header.
    write_header(q, 0, false, 1, 0, 0, 1, out);
    out.insert(out.end(), q.packet.begin() + kHeaderSize, q.packet.begin() + q.question_end);
    append_opt(q, 1, out);
    return true;
  }
  const bool with_question = status == ParseStatus::kNotImp && q.question_end != 0;
  write_header(q, status == ParseStatus::kNotImp ? rcode::kNotImp : rcode::kFormErr, false,
               with_question ? 1 : 0, 0, 0, 0, out);
  if (with_question) {
    out.insert(out.end(), q.packet.begin() + kHeaderSize, q.packet.begin() + q.question_end);
  }
  return true;
}

void build_response(const Query& q, std::uint8_t rc, bool aa, std::string_view answers,
                    std::uint16_t ancount, std::string_view authority, std::uint16_t nscount,
                    std::vector<std::uint8_t>& out) {
  write_header(q, rc, aa, 1, ancount, nscount, q.edns ? 1 : 0, out);
  out.insert(out.end(), q.packet.begin() + kHeaderSize, q.packet.begin() + q.question_end);
  append(out, answers);
  append(out, authority);
  if (q.edns) append_opt(q, 0, out);
}

void empty_response(const Query& q, std::uint8_t rc, std::vector<std::uint8_t>& out) {
  build_response(q, rc, false, {}, 0, {}, 0, out);
}

void fit_udp(const Query& q, std::vector<std::uint8_t>& response) {
  const std::size_t limit = q.edns ? q.udp_size : 512;
  if (response.size() <= limit) return;
  response.resize(q.question_end);
  put16(response.data() + 2, get16(response.data() + 2) | kFlagTc);
  put16(response.data() + 6, 0);
  put16(response.data() + 8, 0);
  put16(response.data() + 10, q.edns ? 1 : 0);
  if (q.edns) append_opt(q, 0, response);
}

Decision resolve(const NameTable& table, const Query& q, std::vector<std::uint8_t>& out) {
  Decision d;
  const Entry* e = table.find(q.name);
  std::string target;
  const bool ours = e != nullptr || cluster_name(table, q.name, target);
  if (!ours) {
    d.action = Action::kForward;
    return d;
  }
  if (q.qclass != kClassIn && q.qclass != kClassAny) {
    empty_response(q, rcode::kRefused, out);
    return d;
  }
  if (!e) {
    d.action = Action::kAskCluster;
    d.target = std::move(target);
    return d;
  }
  if (e->nxdomain) {
    build_response(q, rcode::kNxDomain, true, {}, 0, table.soa_record(), 1, out);
    return d;
  }
  if (q.qtype == kTypeAny) {
    std::string all;
    std::uint16_t count = 0;
    for (const auto& s : e->sets) {
      all += s.wire;
      count += s.count;
    }
    if (count) {
      build_response(q, rcode::kNoError, true, all, count, {}, 0, out);
      return d;
    }
  } else if (const RrSet* set = e->find(q.qtype)) {
    build_response(q, rcode::kNoError, true, set->wire, set->count, {}, 0, out);
    return d;
  } else if (const RrSet* cname = e->find(kTypeCname)) {
    build_response(q, rcode::kNoError, true, cname->wire, cname->count, {}, 0, out);
    d.action = Action::kExternal;
    d.target = e->external_target;
    return d;
  }
  build_response(q, rcode::kNoError, true, {}, 0, table.soa_record(), 1, out);  // NODATA
  return d;
}

}  // namespace lpk::dns
