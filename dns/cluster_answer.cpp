#include "dns/cluster_answer.hpp"

// ldns defines true/false as macros unless stdbool.h came first.
#include <stdbool.h>
// clang-format off
#include <ldns/ldns.h>
// clang-format on

#include <memory>

#include "dns/detail/wire.hpp"
#include "kube/text.hpp"

namespace lpk::dns {

using detail::kHeaderSize;

namespace {

std::string presentation(const std::uint8_t* wire, std::size_t size) {
  std::string out;
  std::size_t pos = 0;
  while (pos < size && wire[pos] != 0) {
    const std::size_t len = wire[pos];
    if (pos + 1 + len > size) break;
    out.append(reinterpret_cast<const char*>(wire + pos + 1), len);
    out.push_back('.');
    pos += 1 + len;
  }
  return out.empty() ? "." : out;
}

}  // namespace

std::vector<std::uint8_t> make_cluster_query(std::uint16_t id, const std::string& name,
                                             std::uint16_t qtype) {
  std::vector<std::uint8_t> q(kHeaderSize, 0);
  detail::put16(&q[0], id);
  q[2] = 0x01;  // RD
  detail::put16(&q[4], 1);
  detail::put16(&q[10], 1);  // the OPT record below
  std::size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const auto len = dot - start;
    if (len == 0 || len > 63) return {};
    q.push_back(std::uint8_t(len));
    q.insert(q.end(), name.begin() + std::ptrdiff_t(start), name.begin() + std::ptrdiff_t(dot));
    start = dot + 1;
  }
  q.push_back(0);
  if (q.size() - kHeaderSize > 255) return {};
  const std::uint8_t tail[] = {std::uint8_t(qtype >> 8), std::uint8_t(qtype), 0, 1,
                               // OPT: root owner, type 41, UDP size 1232, no flags, no data
                               0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0};
  q.insert(q.end(), std::begin(tail), std::end(tail));
  return q;
}

std::size_t question_size(std::span<const std::uint8_t> m) {
  std::size_t pos = kHeaderSize;
  while (pos < m.size() && m[pos] != 0) {
    if (m[pos] > 63) return 0;
    pos += m[pos] + 1;
  }
  pos += 5;  // the root label, QTYPE, QCLASS
  return pos <= m.size() ? pos - kHeaderSize : 0;
}

bool answers_question(std::span<const std::uint8_t> answer, std::span<const std::uint8_t> query) {
  const auto size = question_size(query);
  if (size == 0 || answer.size() < kHeaderSize + size) return false;
  for (std::size_t i = kHeaderSize; i < kHeaderSize + size; ++i) {
    if (text::ascii_lower(char(answer[i])) != text::ascii_lower(char(query[i]))) return false;
  }
  return true;
}

std::optional<ClusterAnswer> parse_cluster_answer(std::span<const std::uint8_t> packet) {
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, packet.data(), packet.size()) != LDNS_STATUS_OK) return std::nullopt;
  std::unique_ptr<ldns_pkt, decltype(&ldns_pkt_free)> pkt(raw, ldns_pkt_free);
  std::unique_ptr<ldns_buffer, decltype(&ldns_buffer_free)> buffer(ldns_buffer_new(512),
                                                                   ldns_buffer_free);
  ClusterAnswer answer;
  answer.rcode = std::uint8_t(ldns_pkt_get_rcode(pkt.get()));
  const ldns_rr_list* rrs = ldns_pkt_answer(pkt.get());
  for (std::size_t i = 0; i < ldns_rr_list_rr_count(rrs); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(rrs, i);
    if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) continue;
    // ldns keeps names uncompressed, so rdata written back is self-contained.
    ldns_buffer_clear(buffer.get());
    if (ldns_rr_rdata2buffer_wire(buffer.get(), rr) != LDNS_STATUS_OK) continue;
    const ldns_rdf* owner = ldns_rr_owner(rr);
    ClusterRecord record;
    record.name = presentation(ldns_rdf_data(owner), ldns_rdf_size(owner));
    record.type = std::uint16_t(ldns_rr_get_type(rr));
    record.ttl = ldns_rr_ttl(rr);
    const auto* data = ldns_buffer_begin(buffer.get());
    record.rdata.assign(data, data + ldns_buffer_position(buffer.get()));
    answer.records.push_back(std::move(record));
  }
  return answer;
}

}  // namespace lpk::dns
