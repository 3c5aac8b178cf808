#pragma once
// The client side of a SOCKS5 handshake (RFC 1928, with RFC 1929 username/password) as pure
// encoders and parsers: bytes in, bytes or a verdict out, no I/O. The port-forward dialer
// (kube/portforward_proxy.cpp) drives them over its socket; golang.org/x/net/internal/socks is
// the behaviour matched (the host name goes to the proxy, as socks5h does).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lpk::kube::detail::socks5 {

inline constexpr std::uint8_t kNoAuth = 0x00;
inline constexpr std::uint8_t kUserPassword = 0x02;

/// VER NMETHODS METHODS: no authentication, plus username/password when we have credentials.
std::vector<std::uint8_t> encode_greeting(bool offer_password);

/// The proxy's choice of method (2 bytes). `error` is one phrase when the choice cannot be used.
struct MethodChoice {
  std::uint8_t method = 0;
  std::string error;
};
MethodChoice parse_method_choice(std::span<const std::uint8_t> reply, bool offered_password);

/// RFC 1929 request; nullopt when the user name or password is longer than 255 bytes.
std::optional<std::vector<std::uint8_t>> encode_password(std::string_view user,
                                                         std::string_view password);
/// "" when the proxy accepted the credentials (2 bytes: VER STATUS), else one phrase.
std::string parse_password_status(std::span<const std::uint8_t> reply);

/// CONNECT to host:port: an IP literal as an address, anything else as a name (the proxy
/// resolves it). nullopt when the name is empty or longer than 255 bytes.
std::optional<std::vector<std::uint8_t>> encode_connect(std::string_view host, std::uint16_t port);

/// The CONNECT reply has a variable length: VER REP RSV ATYP BND.ADDR BND.PORT.
inline constexpr std::size_t kReplyHead = 5;  ///< enough to know the whole reply's size
struct ConnectReply {
  std::size_t size = 0;  ///< the whole reply's size (>= kReplyHead) when error is empty
  std::string error;     ///< one phrase: the proxy's refusal or a malformed reply
};
/// Needs at least kReplyHead bytes (fewer is malformed); looks at no more than `size`.
ConnectReply parse_connect_reply(std::span<const std::uint8_t> head);

/// RFC 1928 §6 reply codes as phrases ("connection not allowed by ruleset").
std::string reply_text(std::uint8_t code);

}  // namespace lpk::kube::detail::socks5
