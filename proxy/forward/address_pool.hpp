#pragma once
// Stable loopback addresses for service names. Linux routes all of 127.0.0.0/8 to `lo`, so
// any address in the pool can be bound without admin rights.
//
// The address of a name is a hash of the name into the pool, so the same name gets the same
// address in every session and on every machine; a collision moves to the next free address
// (deterministic for the same set of names). Pure: no sockets, no state on disk.
//
// Sessions share the machine's pool by slots: the pool splits into equal sub-networks, a session
// hashes its target (cluster and namespace) to a preferred slot and allocates inside the slot it
// holds (SlotClaim decides which one is free), so two live sessions never share an address.

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace lpk::proxy {

class AddressPool {
 public:
  /// `pool` must lie inside 127.0.0.0/8 and hold at least 4 addresses (throws otherwise).
  explicit AddressPool(boost::asio::ip::network_v4 pool);
  static boost::asio::ip::network_v4 default_pool();  // 127.77.0.0/16

  /// The address for `name` (case-insensitive); nullopt when the pool is full.
  std::optional<boost::asio::ip::address_v4> allocate(std::string_view name);
  /// Gives `name` another address because something outside lpk holds its current one (a bind
  /// failed): that address is never handed out again by this pool. nullopt when the pool is
  /// full (the name then has no address).
  std::optional<boost::asio::ip::address_v4> move_away(std::string_view name);
  /// The name owning `address`, if any (for PTR answers and diagnostics).
  std::optional<std::string> name_of(boost::asio::ip::address_v4 address) const;
  std::size_t size() const { return by_name_.size(); }

  /// The name the stub DNS's address is allocated under, first, so that it is preferred().
  static constexpr std::string_view kStubDnsName = "dns.lpk.internal";

  /// Slots: `pool` split into up to 64 sub-networks of at least 256 addresses (a /16 gives 64
  /// slots of /22, 1022 usable addresses each; a /24 or smaller is one slot).
  static std::uint32_t slot_count(boost::asio::ip::network_v4 pool);
  /// Slot `index` (below slot_count) of `pool`.
  static boost::asio::ip::network_v4 slot(boost::asio::ip::network_v4 pool, std::uint32_t index);
  /// The slot index `key` (a session target, e.g. cluster and namespace) hashes to.
  static std::uint32_t preferred_slot(boost::asio::ip::network_v4 pool, std::string_view key);

  /// The address `name` hashes to before any collision is resolved.
  static boost::asio::ip::address_v4 preferred(boost::asio::ip::network_v4 pool,
                                               std::string_view name);

 private:
  boost::asio::ip::network_v4 pool_;
  std::map<std::string, boost::asio::ip::address_v4> by_name_;
  std::map<boost::asio::ip::address_v4, std::string> by_address_;
};

}  // namespace lpk::proxy
