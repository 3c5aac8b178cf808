#include "tools/kubesim/network.hpp"

#include <boost/asio/ip/address.hpp>
#include <stdexcept>

namespace lpk::kubesim {

namespace {

// fd<global id>:<subnet>::<host>, printed the way the kernel and every client print it (the
// canonical form RFC 5952 gives): addresses are compared as strings in the store.
std::string ula_address(const std::string& global_id, std::uint16_t subnet, std::uint32_t host) {
  boost::asio::ip::address_v6::bytes_type b{};
  b[0] = 0xfd;
  for (int i = 0; i < 5; ++i)
    b[1 + i] = std::uint8_t(std::stoul(global_id.substr(2 * i, 2), nullptr, 16));
  b[6] = std::uint8_t(subnet >> 8);
  b[7] = std::uint8_t(subnet);
  for (int i = 0; i < 4; ++i) b[12 + i] = std::uint8_t(host >> (24 - 8 * i));
  return boost::asio::ip::address_v6(b).to_string();
}

std::optional<std::string> ipv4_in_slash16(const char* first_two, std::uint32_t n) {
  if (n % 256 == 0 || n % 256 == 255 || n > 0xFFFF) return std::nullopt;
  return std::string(first_two) + std::to_string(n / 256) + "." + std::to_string(n % 256);
}

// The subnets in the ULA: the numbers of the IPv4 ranges, read as hex (as kind's IPv6
// defaults fd00:10:244::/56 and fd00:10:96::/112 do).
constexpr std::uint16_t kPodSubnet = 0x244;
constexpr std::uint16_t kServiceSubnet = 0x96;

}  // namespace

ClusterNetwork ClusterNetwork::ipv4() { return {}; }

ClusterNetwork ClusterNetwork::ipv6(const std::string& instance_tag) {
  if (instance_tag.size() != 8 ||
      instance_tag.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw std::invalid_argument("instance tag '" + instance_tag + "' is not 8 hex digits");
  }
  ClusterNetwork n;
  n.family_ = IpFamily::ipv6;
  n.prefix_ = instance_tag + "00";
  return n;
}

std::optional<IpFamily> ClusterNetwork::parse_family(const std::string& text) {
  if (text == "ipv4") return IpFamily::ipv4;
  if (text == "ipv6") return IpFamily::ipv6;
  return std::nullopt;
}

std::string ClusterNetwork::family_of(const std::string& address) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(address, ec);
  if (ec) return "";
  return a.is_v4() ? "IPv4" : "IPv6";
}

std::optional<std::string> ClusterNetwork::pod_ip(std::uint32_t n) const {
  if (family_ == IpFamily::ipv4) return ipv4_in_slash16("10.244.", n);
  if (n == 0) return std::nullopt;
  return ula_address(prefix_, kPodSubnet, n);
}

std::string ClusterNetwork::service_cidr() const {
  if (family_ == IpFamily::ipv4) return "10.96.0.0/16";
  return ula_address(prefix_, kServiceSubnet, 0) + "/112";
}

std::optional<std::string> ClusterNetwork::service_ip(std::uint32_t n) const {
  if (family_ == IpFamily::ipv4) return ipv4_in_slash16("10.96.", n);
  if (n == 0 || n > 0xFFFF) return std::nullopt;
  return ula_address(prefix_, kServiceSubnet, n);
}

}  // namespace lpk::kubesim
