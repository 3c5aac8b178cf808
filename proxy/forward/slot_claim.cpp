#include "proxy/forward/slot_claim.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <system_error>
#include <utility>

#include "proxy/forward/address_pool.hpp"

namespace lpk::proxy {

namespace ip = boost::asio::ip;

namespace {

/// Binds a new socket to the abstract name `name`: its descriptor, or -1 when another socket
/// holds the name. Throws when no socket can be made.
int bind_abstract(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);  // not inherited by the child
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "slot claim socket");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // sun_path[0] == 0 makes the name abstract; the rest of the bytes given are the name.
  const auto length = std::min(name.size(), sizeof(address.sun_path) - 1);
  std::memcpy(address.sun_path + 1, name.data(), length);
  const auto size = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + length);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), size) == 0) return fd;
  int error = errno;
  ::close(fd);
  if (error == EADDRINUSE) return -1;
  throw std::system_error(error, std::generic_category(), "slot claim bind");
}

}  // namespace

std::optional<SlotClaim> SlotClaim::claim(ip::network_v4 pool, std::string_view key,
                                          const Usable& usable, std::string_view scope) {
  const auto count = AddressPool::slot_count(pool);
  const auto first = AddressPool::preferred_slot(pool, key);
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto slot = AddressPool::slot(pool, first + i);
    int fd = bind_abstract(std::string(scope) + "/slot/" + slot.to_string());
    if (fd < 0) continue;
    SlotClaim held(fd, slot);
    // Asked while holding the claim, so that no other session takes the slot meanwhile.
    if (!usable || usable(slot)) return held;
  }
  return std::nullopt;
}

SlotClaim::SlotClaim(SlotClaim&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), slot_(other.slot_) {}

SlotClaim& SlotClaim::operator=(SlotClaim&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
    slot_ = other.slot_;
  }
  return *this;
}

SlotClaim::~SlotClaim() { release(); }

void SlotClaim::release() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

}  // namespace lpk::proxy
