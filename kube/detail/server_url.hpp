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

}  // namespace lpk::kube::detail
