#pragma once
// Which slot of the address pool (AddressPool::slot) a session may use: the session claims one
// and holds it while it lives, so that two sessions on one machine never share an address.
//
// The claim is an abstract unix socket bound to a name made of the scope and the slot
// (`@lpk/slot/127.77.20.0/22`). The kernel lets one socket hold a name, frees it when the
// holder closes it or dies however it dies (kill -9 included), and keeps abstract names per
// network namespace, which is exactly the reach of the loopback addresses being shared: no files
// to clean up, no stale locks, and it works across users, who share the addresses too.

#include <boost/asio/ip/network_v4.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace lpk::proxy {

class SlotClaim {
 public:
  /// Says whether a slot no lpk session holds can be used (e.g. its stub DNS address is free);
  /// a slot it refuses is skipped like a claimed one.
  using Usable = std::function<bool(boost::asio::ip::network_v4 slot)>;

  /// Claims the first free slot of `pool`, trying AddressPool::preferred_slot(pool, key) first
  /// and then the ones after it (wrapping). nullopt when every slot is claimed or refused.
  /// `scope` names the set of claimers ("lpk"; tests use their own so that they never meet a
  /// real session). Throws std::system_error when no unix socket can be made at all.
  static std::optional<SlotClaim> claim(boost::asio::ip::network_v4 pool, std::string_view key,
                                        const Usable& usable = {}, std::string_view scope = "lpk");

  SlotClaim(SlotClaim&& other) noexcept;
  SlotClaim& operator=(SlotClaim&& other) noexcept;
  SlotClaim(const SlotClaim&) = delete;
  SlotClaim& operator=(const SlotClaim&) = delete;
  /// Releases the claim.
  ~SlotClaim();

  boost::asio::ip::network_v4 slot() const { return slot_; }
  /// Idempotent: the slot is free for the next claimer.
  void release();

 private:
  SlotClaim(int fd, boost::asio::ip::network_v4 slot) : fd_(fd), slot_(slot) {}

  int fd_ = -1;
  boost::asio::ip::network_v4 slot_;
};

}  // namespace lpk::proxy
