#include "kube/detail/server_url.hpp"

#include <cctype>
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

namespace {

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    int value = 0;
    if (i + 2 >= s.size()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16);
    if (ec != std::errc() || p != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

}  // namespace

std::string ProxyUrl::host_port() const { return ServerUrl{scheme, host, port, {}}.host_port(); }
std::string ProxyUrl::display() const { return scheme + "://" + host_port(); }

std::optional<ProxyUrl> parse_proxy_url(std::string_view url) {
  ProxyUrl p;
  auto sep = url.find("://");
  p.scheme = sep == std::string_view::npos ? "http" : std::string(url.substr(0, sep));
  for (auto& c : p.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (p.scheme == "socks5h") p.scheme = "socks5";
  if (p.scheme != "http" && p.scheme != "https" && p.scheme != "socks5") return std::nullopt;
  auto rest = sep == std::string_view::npos ? url : url.substr(sep + 3);
  auto at = rest.find('@');
  if (at != std::string_view::npos && at < rest.find('/')) {
    auto userinfo = rest.substr(0, at);
    auto colon = userinfo.find(':');
    p.user = percent_decode(userinfo.substr(0, colon));
    auto password = colon == std::string_view::npos ? std::optional<std::string>("")
                                                    : percent_decode(userinfo.substr(colon + 1));
    if (!p.user || !password) return std::nullopt;
    p.password = *password;
    rest.remove_prefix(at + 1);
  }
  // The address part reads like an http:// server URL; only the default port differs.
  auto address = parse_server_url("http://" + std::string(rest), false);
  if (!address || !address->prefix.empty()) return std::nullopt;
  p.host = address->host;
  bool explicit_port = rest.find(']') != std::string_view::npos
                           ? rest.find(':', rest.find(']')) != std::string_view::npos
                           : rest.find(':') != std::string_view::npos;
  p.port = explicit_port          ? address->port
           : p.scheme == "https"  ? 443
           : p.scheme == "socks5" ? 1080
                                  : 80;
  return p;
}

}  // namespace lpk::kube::detail
