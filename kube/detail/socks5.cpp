#include "kube/detail/socks5.hpp"

#include <boost/asio/ip/address.hpp>

namespace lpk::kube::detail::socks5 {

namespace {
constexpr std::uint8_t kVersion = 0x05;
constexpr std::uint8_t kPasswordVersion = 0x01;
constexpr std::uint8_t kNoAcceptable = 0xff;
constexpr std::uint8_t kCmdConnect = 0x01;
constexpr std::uint8_t kAtypIpv4 = 0x01, kAtypName = 0x03, kAtypIpv6 = 0x04;

void append(std::vector<std::uint8_t>& out, std::string_view s) {
  out.insert(out.end(), s.begin(), s.end());
}
}  // namespace

std::vector<std::uint8_t> encode_greeting(bool offer_password) {
  if (offer_password) return {kVersion, 2, kNoAuth, kUserPassword};
  return {kVersion, 1, kNoAuth};
}

MethodChoice parse_method_choice(std::span<const std::uint8_t> reply, bool offered_password) {
  if (reply.size() < 2) return {0, "a truncated method choice"};
  if (reply[0] != kVersion)
    return {0, "an answer that is not SOCKS5 (version " + std::to_string(reply[0]) + ")"};
  auto method = reply[1];
  if (method == kNoAcceptable) {
    return {method, offered_password ? "no acceptable authentication method (it refused both none "
                                       "and username/password)"
                                     : "no acceptable authentication method (it wants credentials: "
                                       "put user:password@ in the proxy URL)"};
  }
  if (method == kNoAuth || (method == kUserPassword && offered_password)) return {method, {}};
  return {method, "authentication method " + std::to_string(method) + ", which was not offered"};
}

std::optional<std::vector<std::uint8_t>> encode_password(std::string_view user,
                                                         std::string_view password) {
  if (user.empty() || user.size() > 255 || password.size() > 255) return std::nullopt;
  std::vector<std::uint8_t> out{kPasswordVersion, static_cast<std::uint8_t>(user.size())};
  append(out, user);
  out.push_back(static_cast<std::uint8_t>(password.size()));
  append(out, password);
  return out;
}

std::string parse_password_status(std::span<const std::uint8_t> reply) {
  if (reply.size() < 2) return "a truncated username/password answer";
  if (reply[0] != kPasswordVersion)
    return "a username/password answer of version " + std::to_string(reply[0]);
  if (reply[1] != 0) return "wrong username or password (status " + std::to_string(reply[1]) + ")";
  return {};
}

std::optional<std::vector<std::uint8_t>> encode_connect(std::string_view host, std::uint16_t port) {
  std::vector<std::uint8_t> out{kVersion, kCmdConnect, 0};
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(std::string(host), ec);
  if (!ec && ip.is_v4()) {
    out.push_back(kAtypIpv4);
    auto b = ip.to_v4().to_bytes();
    out.insert(out.end(), b.begin(), b.end());
  } else if (!ec && ip.is_v6()) {
    out.push_back(kAtypIpv6);
    auto b = ip.to_v6().to_bytes();
    out.insert(out.end(), b.begin(), b.end());
  } else {
    if (host.empty() || host.size() > 255) return std::nullopt;
    out.push_back(kAtypName);
    out.push_back(static_cast<std::uint8_t>(host.size()));
    append(out, host);
  }
  out.push_back(static_cast<std::uint8_t>(port >> 8));
  out.push_back(static_cast<std::uint8_t>(port & 0xff));
  return out;
}

ConnectReply parse_connect_reply(std::span<const std::uint8_t> head) {
  if (head.size() < kReplyHead) return {0, "a truncated CONNECT reply"};
  if (head[0] != kVersion)
    return {0, "a CONNECT reply that is not SOCKS5 (version " + std::to_string(head[0]) + ")"};
  if (head[1] != 0) return {0, reply_text(head[1]) + " (reply " + std::to_string(head[1]) + ")"};
  if (head[2] != 0) return {0, "a CONNECT reply with a non-zero reserved byte"};
  switch (head[3]) {
    case kAtypIpv4:
      return {4 + 4 + 2, {}};
    case kAtypIpv6:
      return {4 + 16 + 2, {}};
    case kAtypName:
      return {4 + 1 + std::size_t{head[4]} + 2, {}};
    default:
      return {0, "a CONNECT reply with unknown address type " + std::to_string(head[3])};
  }
}

std::string reply_text(std::uint8_t code) {
  switch (code) {
    case 0:
      return "succeeded";
    case 1:
      return "general SOCKS server failure";
    case 2:
      return "connection not allowed by ruleset";
    case 3:
      return "network unreachable";
    case 4:
      return "host unreachable";
    case 5:
      return "connection refused";
    case 6:
      return "TTL expired";
    case 7:
      return "command not supported";
    case 8:
      return "address type not supported";
  }
  return "unknown reply code";
}

}  // namespace lpk::kube::detail::socks5
