#pragma once
// Stable loopback addresses for service names. Linux routes all of 127.0.0.0/8 to `lo`, so
// any address in the pool can be bound without admin rights.
//
// The address of a name is a hash of the name into the pool, so the same name gets the same
// address in every session and on every machine; a collision moves to the next free address
// (deterministic for the same set of names). Pure: no sockets, no state on disk.

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
  /// The name owning `address`, if any (for PTR answers and diagnostics).
  std::optional<std::string> name_of(boost::asio::ip::address_v4 address) const;
  std::size_t size() const { return by_name_.size(); }

  /// The address `name` hashes to before any collision is resolved.
  static boost::asio::ip::address_v4 preferred(boost::asio::ip::network_v4 pool,
                                               std::string_view name);

 private:
  boost::asio::ip::network_v4 pool_;
  std::map<std::string, boost::asio::ip::address_v4> by_name_;
  std::map<boost::asio::ip::address_v4, std::string> by_address_;
};

}  // namespace lpk::proxy
