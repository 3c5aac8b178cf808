// libFuzzer target for what a SOCKS5 proxy answers the port-forward dialer (kube/detail/socks5):
// the method choice, the username/password status and the CONNECT reply, and for proxy URLs
// (from a kubeconfig or HTTPS_PROXY). None may crash; a CONNECT reply either says why it is
// refused or gives a size the dialer can read.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kube/detail/server_url.hpp"
#include "kube/detail/socks5.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lpk::kube::detail;
  std::span<const std::uint8_t> in(data, size);
  socks5::parse_method_choice(in, size % 2 == 0);
  socks5::parse_password_status(in);
  auto reply = socks5::parse_connect_reply(in);
  if (reply.error.empty() && (reply.size < socks5::kReplyHead || reply.size > 4 + 1 + 255 + 2)) {
    __builtin_trap();
  }
  auto url = parse_proxy_url(std::string_view(reinterpret_cast<const char*>(data), size));
  if (url && (url->port < 1 || url->port > 65535 || url->host.empty())) __builtin_trap();
  return 0;
}
