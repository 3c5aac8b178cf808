#include "dns/detail/cache.hpp"

#include <algorithm>

#include "dns/detail/wire.hpp"

namespace lpk::dns::detail {
void Cache::make_key(const Query& q) {
  key_.assign(q.name);
  key_.push_back(static_cast<char>(q.qtype >> 8));
  key_.push_back(static_cast<char>(q.qtype));
  key_.push_back(static_cast<char>(q.qclass >> 8));
  key_.push_back(static_cast<char>(q.qclass));
  // Answers differ with these: recursion, checking disabled, DNSSEC records, and OPT presence.
  key_.push_back(static_cast<char>(((q.flags & kFlagRd) ? 1 : 0) | ((q.flags & kFlagCd) ? 2 : 0) |
                                   (q.dnssec_ok ? 4 : 0) | (q.edns ? 8 : 0)));
}

std::optional<std::uint32_t> Cache::cache_ttl(std::span<const std::uint8_t> r,
                                              std::vector<std::uint16_t>* offsets) {
  if (r.size() < kHeaderSize) return std::nullopt;
  const std::uint16_t flags = get16(r.data() + 2);
  const unsigned rc = flags & 0xF;
  if ((flags & kFlagTc) || (rc != rcode::kNoError && rc != rcode::kNxDomain)) return std::nullopt;
  if (get16(r.data() + 4) != 1) return std::nullopt;
  auto pos = skip_name(r, kHeaderSize);
  if (!pos || *pos + 4 > r.size()) return std::nullopt;
  std::size_t at = *pos + 4;
  const unsigned an = get16(r.data() + 6), ns = get16(r.data() + 8), ar = get16(r.data() + 10);
  std::uint32_t ttl = UINT32_MAX;
  std::optional<std::uint32_t> soa_ttl;
  for (unsigned i = 0; i < an + ns + ar; ++i) {
    auto name_end = skip_name(r, at);
    auto next = skip_record(r, at);
    if (!name_end || !next || *next > 0xFFFF) return std::nullopt;
    const std::uint16_t type = get16(r.data() + *name_end);
    const std::uint32_t rr_ttl =
        std::min<std::uint32_t>(get32(r.data() + *name_end + 4), 0x7FFFFFFF);
    if (type != kTypeOpt) {
      if (offsets) offsets->push_back(static_cast<std::uint16_t>(*name_end + 4));
      if (i < an + ns) ttl = std::min(ttl, rr_ttl);
      if (type == kTypeSoa && i >= an && i < an + ns && *next >= 4) {
        soa_ttl = std::min(rr_ttl, get32(r.data() + *next - 4));  // MINIMUM is the last field
      }
    }
    at = *next;
  }
  const bool negative = rc == rcode::kNxDomain || an == 0;
  if (negative) {
    if (!soa_ttl) return std::nullopt;  // RFC 2308 section 5: no SOA, no negative caching
    return *soa_ttl;
  }
  return ttl;
}

void Cache::store(const Query& q, std::span<const std::uint8_t> response) {
  Item item;
  auto ttl = cache_ttl(response, &item.ttl_offsets);
  if (!ttl || *ttl == 0 || q.question_end == 0) return;
  if (items_.size() >= max_entries_) items_.erase(items_.begin());  // crude, but bounded
  item.wire.assign(response.begin(), response.end());
  item.stored = clock_();
  item.expires = item.stored + std::chrono::seconds(std::min(*ttl, max_ttl_));
  make_key(q);
  items_.insert_or_assign(key_, std::move(item));
}

bool Cache::lookup(const Query& q, std::vector<std::uint8_t>& out) {
  if (items_.empty()) return false;
  make_key(q);
  auto it = items_.find(key_);
  if (it == items_.end()) return false;
  const Item& item = it->second;
  const auto now = clock_();
  if (now >= item.expires || item.wire.size() < q.question_end) {
    items_.erase(it);
    return false;
  }
  out.assign(item.wire.begin(), item.wire.end());
  put16(out.data(), q.id);
  // Same name modulo case, so same length: echo the client's spelling (RFC 1035 4.1.1).
  std::copy(q.packet.begin() + kHeaderSize, q.packet.begin() + q.question_end,
            out.begin() + kHeaderSize);
  const auto age = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now - item.stored).count());
  if (age > 0) {
    for (std::uint16_t off : item.ttl_offsets) {
      const std::uint32_t ttl = get32(out.data() + off);
      put32(out.data() + off, ttl > age ? ttl - age : 0);
    }
  }
  return true;
}

}  // namespace lpk::dns::detail
