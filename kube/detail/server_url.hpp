#pragma once
// The API server address as client-go's DefaultServerURL reads it: a URL whose path is a prefix
// for every API path, or a bare host:port that gets https:// when TLS settings are present.
#include <optional>
#include <string>
#include <string_view>

namespace lpk::kube::detail {

struct ServerUrl {
  std::string scheme;  ///< "https" or "http"
  std::string host;    ///< IPv6 without brackets
  int port = 0;        ///< explicit or the scheme's default
  std::string prefix;  ///< "" or "/some/prefix" (no trailing slash)

  std::string host_port() const;  ///< "h:443", "[::1]:443"
  std::string base() const;       ///< scheme://host:port/prefix
};

std::optional<ServerUrl> parse_server_url(std::string_view server, bool default_tls);

/// A proxy URL as client-go's upgrade dialer reads it: http:// (also without a scheme), https://
/// or socks5:// (socks5h:// is the same: Go's socks5 dialer always sends the name), with
/// user:password@ percent-decoded, and the default ports 80, 443 and 1080.
struct ProxyUrl {
  std::string scheme;  ///< "http", "https" or "socks5"
  std::string host;    ///< IPv6 without brackets
  int port = 0;
  std::optional<std::string> user;  ///< set when the URL has userinfo
  std::string password;

  std::string host_port() const;  ///< "h:1080", "[::1]:1080"
  std::string display() const;    ///< scheme://host:port, never the credentials
};

std::optional<ProxyUrl> parse_proxy_url(std::string_view url);

}  // namespace lpk::kube::detail
