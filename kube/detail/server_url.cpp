#include "kube/detail/server_url.hpp"

#include <charconv>

namespace lpk::kube::detail {

std::string ServerUrl::host_port() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string ServerUrl::base() const { return scheme + "://" + host_port() + prefix; }

std::optional<ServerUrl> parse_server_url(std::string_view s, bool default_tls) {
  ServerUrl u;
  auto sep = s.find("://");
  if (sep == std::string_view::npos) {
    u.scheme = default_tls ? "https" : "http";
  } else {
    u.scheme = std::string(s.substr(0, sep));
    s.remove_prefix(sep + 3);
    if (u.scheme != "https" && u.scheme != "http") return std::nullopt;
  }
  auto slash = s.find('/');
  std::string_view authority = s.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : s.substr(slash);
  // A bare host:port may not carry a path (DefaultServerURL).
  if (sep == std::string_view::npos && !path.empty() && path != "/") return std::nullopt;
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  u.prefix = std::string(path);
  if (authority.find('@') != std::string_view::npos || authority.empty()) return std::nullopt;
  std::string_view port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(':') != colon) return std::nullopt;
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return std::nullopt;
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port.empty()) {
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), u.port);
    if (ec != std::errc() || p != port.data() + port.size() || u.port < 1 || u.port > 65535)
      return std::nullopt;
  }
  return u;
}

}  // namespace lpk::kube::detail
