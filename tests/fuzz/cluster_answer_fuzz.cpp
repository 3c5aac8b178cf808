// libFuzzer target for what lpk reads back from the cluster's DNS (through the agent's
// dns.lpk.internal service): dns::parse_cluster_answer on the whole input, question_size and
// answers_question on it and on queries built from what it parsed. Nothing may crash or read
// outside the packet; sizes stay inside it; a built query's question is measured exactly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "dns/cluster_answer.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr std::size_t kHeader = 12;
constexpr std::size_t kOpt = 11;  // the OPT record make_cluster_query appends

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> packet(data, size);
  const auto qsize = lpk::dns::question_size(packet);
  check(qsize == 0 || (qsize >= 5 && kHeader + qsize <= size));
  check(lpk::dns::answers_question(packet, packet) == (qsize != 0));
  lpk::dns::answers_question(packet, packet.subspan(size / 2));
  lpk::dns::answers_question(packet.subspan(size / 2), packet);

  auto answer = lpk::dns::parse_cluster_answer(packet);
  if (!answer) return 0;
  check(answer->rcode <= 15);
  int built = 0;
  for (const auto& record : answer->records) {
    check(!record.name.empty() && record.name.back() == '.');
    check(record.rdata.size() <= 65535);
    if (built++ == 4) continue;
    // The cluster's own names, asked again (as a CNAME chain would make lpk do).
    auto query = lpk::dns::make_cluster_query(0x1234, record.name, record.type);
    if (query.empty()) continue;
    check(lpk::dns::question_size(query) == query.size() - kHeader - kOpt);
    check(lpk::dns::answers_question(query, query));
    lpk::dns::answers_question(packet, query);
  }
  return 0;
}
