#include "proxy/forward/address_pool.hpp"

#include <algorithm>
#include <stdexcept>

#include "kube/text.hpp"

namespace lpk::proxy {

namespace ip = boost::asio::ip;

namespace {

using text::ascii_lower;

// FNV-1a: stable across builds and platforms, unlike std::hash.
std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Usable hosts: skip the first and last address of the pool (network and broadcast style
// addresses confuse people reading logs, and .0 is refused by some clients).
std::uint32_t host_count(ip::network_v4 pool) {
  return std::uint32_t((1ull << (32 - pool.prefix_length())) - 2);
}

ip::address_v4 host_at(ip::network_v4 pool, std::uint32_t index) {
  return ip::address_v4(pool.network().to_uint() + 1 + index);
}

}  // namespace

AddressPool::AddressPool(ip::network_v4 pool) : pool_(pool.canonical()) {
  const ip::network_v4 loopback(ip::make_address_v4("127.0.0.0"), 8);
  if (!pool_.is_subnet_of(loopback) && pool_ != loopback) {
    throw std::invalid_argument("the address pool " + pool.to_string() +
                                " is not inside 127.0.0.0/8");
  }
  if (pool_.prefix_length() > 30) {
    throw std::invalid_argument("the address pool " + pool.to_string() + " is too small");
  }
}

ip::network_v4 AddressPool::default_pool() {
  return ip::network_v4(ip::make_address_v4("127.77.0.0"), 16);
}

ip::address_v4 AddressPool::preferred(ip::network_v4 pool, std::string_view name) {
  pool = pool.canonical();
  return host_at(pool, std::uint32_t(fnv1a(ascii_lower(name)) % host_count(pool)));
}

std::optional<ip::address_v4> AddressPool::allocate(std::string_view name) {
  auto key = ascii_lower(name);
  if (auto it = by_name_.find(key); it != by_name_.end()) return it->second;
  const auto count = host_count(pool_);
  if (by_address_.size() >= count) return std::nullopt;  // held addresses count too
  auto index = std::uint32_t(fnv1a(key) % count);
  while (by_address_.count(host_at(pool_, index))) index = (index + 1) % count;
  auto address = host_at(pool_, index);
  by_name_.emplace(key, address);
  by_address_.emplace(address, key);
  return address;
}

std::optional<ip::address_v4> AddressPool::move_away(std::string_view name) {
  auto key = ascii_lower(name);
  if (auto it = by_name_.find(key); it != by_name_.end()) {
    by_address_[it->second].clear();  // held by someone else: an owner without a name
    by_name_.erase(it);
  }
  return allocate(key);
}

std::optional<std::string> AddressPool::name_of(ip::address_v4 address) const {
  auto it = by_address_.find(address);
  if (it == by_address_.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

namespace {

constexpr std::uint16_t kMaxSlotBits = 6;         // 64 slots
constexpr std::uint16_t kLargestSlotPrefix = 24;  // at least 256 addresses a slot

std::uint16_t slot_prefix(ip::network_v4 pool) {
  const std::uint16_t prefix = pool.prefix_length();
  if (prefix >= kLargestSlotPrefix) return prefix;
  return std::min<std::uint16_t>(prefix + kMaxSlotBits, kLargestSlotPrefix);
}

}  // namespace

std::uint32_t AddressPool::slot_count(ip::network_v4 pool) {
  return 1u << (slot_prefix(pool) - pool.prefix_length());
}

ip::network_v4 AddressPool::slot(ip::network_v4 pool, std::uint32_t index) {
  pool = pool.canonical();
  const auto prefix = slot_prefix(pool);
  const auto offset = std::uint32_t(index % slot_count(pool)) << (32 - prefix);
  return ip::network_v4(ip::address_v4(pool.network().to_uint() + offset), prefix);
}

std::uint32_t AddressPool::preferred_slot(ip::network_v4 pool, std::string_view key) {
  return std::uint32_t(fnv1a(key) % slot_count(pool));
}

}  // namespace lpk::proxy
