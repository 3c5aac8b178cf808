#pragma once
// Answer cache for forwarded queries: positive answers live for their smallest TTL, negative
// ones (NXDOMAIN, NODATA) for min(SOA TTL, SOA MINIMUM) as RFC 2308 says; negative answers
// without an SOA, SERVFAIL and truncated answers are not cached. Hits are served on the UDP hot
// path: one hash lookup, one copy, then the ID, the question's spelling and the TTLs are patched.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/resolver.hpp"

namespace lpk::dns::detail {

class Cache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  Cache(Clock clock, std::size_t max_entries, std::uint32_t max_ttl = 86400)
      : clock_(std::move(clock)), max_entries_(max_entries), max_ttl_(max_ttl) {}

  /// Writes the cached response to `q` into `out`; false on a miss or an expired entry.
  bool lookup(const Query& q, std::vector<std::uint8_t>& out);

  /// Stores `response` (an upstream's answer to `q`) if it may be cached.
  void store(const Query& q, std::span<const std::uint8_t> response);

  /// How long `response` may be cached, and where its TTL fields are; nullopt: not cacheable.
  static std::optional<std::uint32_t> cache_ttl(std::span<const std::uint8_t> response,
                                                std::vector<std::uint16_t>* ttl_offsets);

  std::size_t size() const { return items_.size(); }
  void clear() { items_.clear(); }

 private:
  struct Item {
    std::vector<std::uint8_t> wire;
    std::vector<std::uint16_t> ttl_offsets;
    std::chrono::steady_clock::time_point expires;
    std::chrono::steady_clock::time_point stored;
  };
  void make_key(const Query& q);

  Clock clock_;
  std::size_t max_entries_;
  std::uint32_t max_ttl_;
  std::unordered_map<std::string, Item> items_;
  std::string key_;  // reused so a lookup does not allocate
};

}  // namespace lpk::dns::detail
