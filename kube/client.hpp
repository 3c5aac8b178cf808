#pragma once
// REST calls to the Kubernetes API over libcurl: blocking, JSON in and out, Status errors as one
// sentence, 429 retries, Warning headers logged, watches that resume and relist.
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>

#include "kube/auth.hpp"
#include "kube/config.hpp"

namespace lpk::kube {

struct ListOptions {
  std::string label_selector{}, field_selector{}, resource_version{};
  int timeout_seconds = 0;  ///< watch: server-side timeout per request (0 = 300)
  bool allow_bookmarks = true;
};

/// An error answer of the API server (or a transport failure: code 0, or a malformed body).
/// what() is one clear sentence, e.g. for 403
/// "not allowed to patch deployments.apps in namespace demo: <message>".
class ApiError : public std::runtime_error {
 public:
  ApiError(const std::string& what, int code, std::string reason, nlohmann::json status)
      : std::runtime_error(what), code(code), reason(std::move(reason)), status(std::move(status)) {}
  int code;            ///< HTTP status; 0 when the server was not reached
  std::string reason;  ///< Status.reason (NotFound, Forbidden, ...) or a transport reason
  nlohmann::json status;  ///< the Status object when the server sent one, else null
};

enum class PatchType { strategic_merge, merge, json };

struct WatchEvent {
  std::string type;  ///< ADDED | MODIFIED | DELETED (BOOKMARK and ERROR are handled inside)
  nlohmann::json object;
};

namespace detail {
class Http;
}

/// Blocking calls; safe to use from several threads at once (one curl handle per call).
/// Never call from an io_context thread.
class Client {
 public:
  explicit Client(RestConfig config);  ///< builds its Credentials
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  nlohmann::json get(const std::string& path);
  nlohmann::json list(const std::string& path, const ListOptions& options = {});
  nlohmann::json create(const std::string& path, const nlohmann::json& body);
  nlohmann::json replace(const std::string& path, const nlohmann::json& body);  ///< PUT
  nlohmann::json patch(const std::string& path, const nlohmann::json& body,
                       PatchType type = PatchType::strategic_merge);
  /// DELETE; a non-empty propagation_policy (Background, Foreground, Orphan) goes in the
  /// DeleteOptions body, as kubectl sends it.
  void remove(const std::string& path, std::string_view propagation_policy = {});

  /// list + watch from its resourceVersion; resumes after server timeouts from the last RV
  /// (bookmarks too); on 410 (HTTP or ERROR event) lists again and calls on_relist(list) before
  /// watching again. on_relist is also called with the first list. Returns when stop is
  /// requested (noticed within ~1 s). Other errors throw ApiError.
  void watch(const std::string& path, const ListOptions& options,
             std::function<void(const nlohmann::json& list)> on_relist,
             std::function<void(const WatchEvent&)> on_event, std::stop_token stop);

  /// Bounds each non-watch call (default 300 s): a loop that polls (lpk-agent restore-watch)
  /// would rather fail a call on a connection that went dead silently and try again.
  void set_call_timeout(std::chrono::seconds timeout) { call_timeout_ = timeout; }

  Credentials& credentials() { return credentials_; }
  const RestConfig& config() const { return credentials_.config(); }

 private:
  enum class WatchEnd { timed_out, gone, broken, error_event, stopped };
  nlohmann::json call(const std::string& method, const std::string& verb, const std::string& path,
                      const std::string& body = {}, const std::string& content_type = {});
  WatchEnd watch_once(const std::string& path, const ListOptions& options, std::string& rv,
                      const std::function<void(const WatchEvent&)>& on_event,
                      std::stop_token stop);
  std::string who() const;

  Credentials credentials_;
  std::unique_ptr<detail::Http> http_;
  std::chrono::seconds call_timeout_{0};  ///< 0: kCallTimeoutSeconds
};

/// "/api/v1/namespaces/demo/services/api", "/apis/apps/v1/namespaces/demo/deployments/web";
/// an empty ns gives the cluster-wide path ("/api/v1/pods").
std::string resource_path(std::string_view group_version, std::string_view ns,
                          std::string_view resource, std::string_view name = {});

/// Percent-encodes a query parameter value (label selectors and the like).
std::string query_escape(std::string_view value);

/// The proxy URL client-go would use to reach this cluster (proxy-url, else HTTPS_PROXY /
/// HTTP_PROXY minus NO_PROXY, loopback and localhost), "" when direct. socks5 is returned as
/// socks5h://. For dialers outside libcurl (the port-forward WebSocket).
std::string proxy_for(const ClusterConfig& cluster);

}  // namespace lpk::kube
