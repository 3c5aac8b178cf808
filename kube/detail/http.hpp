#pragma once
// One HTTPS exchange with the API server over libcurl's easy API: TLS settings from the
// kubeconfig (CA, insecure, tls-server-name, client certificate), proxies as client-go picks
// them, credentials headers, Warning headers logged, streaming bodies, and a stop token.
#include <functional>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kube/auth.hpp"
#include "kube/detail/server_url.hpp"

namespace lpk::kube::detail {

struct HttpRequest {
  std::string method = "GET";
  std::string target;  ///< path and query, without the server's prefix
  std::string body;
  std::string content_type;
  /// Streaming: gets the body as it arrives when the status is 2xx; returns false to abort.
  std::function<bool(std::string_view)> on_data;
  long timeout_seconds = 0;  ///< whole exchange; 0 = none
  std::stop_token stop;
};

struct HttpResponse {
  long code = 0;            ///< 0: no HTTP answer (see error)
  std::string error;        ///< transport failure, one line
  bool aborted = false;     ///< stop requested or on_data said stop
  std::string body;         ///< whole body (non-2xx bodies even when streaming)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const;  ///< case-insensitive, "" if absent
};

/// The proxy client-go would use for this server: proxy-url, else HTTPS_PROXY/HTTP_PROXY
/// (either case) unless NO_PROXY matches or the host is localhost or a loopback address.
/// Empty = direct. Exposed for the port-forward dialer.
std::string proxy_for(const ClusterConfig& cluster, const ServerUrl& server);

class Http {
 public:
  explicit Http(Credentials& credentials);
  /// Blocking; thread-safe (one curl easy handle per call).
  HttpResponse perform(const HttpRequest& request);

 private:
  void log_warnings(const HttpResponse& response);

  Credentials& credentials_;
  ServerUrl server_;
  std::string proxy_;
  std::mutex warned_mutex_;
  std::set<std::string> warned_;
};

}  // namespace lpk::kube::detail
