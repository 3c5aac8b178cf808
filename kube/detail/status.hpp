#pragma once
// Untrusted server answers made safe: Status bodies turned into one sentence, and the lines of a
// watch stream parsed. Pure functions; malformed input gives an error, never a crash.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kube/client.hpp"

namespace lpk::kube::detail {

/// The parts of an API path: /api/v1/namespaces/demo/pods/x/portforward,
/// /apis/apps/v1/deployments, ...
struct ApiPath {
  std::string group, version, ns, resource, name, subresource;
  /// "deployments.apps", "pods", "pods/portforward" (RBAC's resource[/subresource].group form)
  std::string resource_label() const;
};
ApiPath parse_api_path(std::string_view path);

/// The ApiError for an HTTP answer that is not 2xx. `verb` is Kubernetes' verb (get, list,
/// watch, create, update, patch, delete); `who` names the credentials source for 401s.
ApiError api_error(int code, std::string_view body, std::string_view verb, std::string_view path,
                   std::string_view who);

/// An ApiError for a 2xx answer whose body is not the JSON object expected.
ApiError malformed_body(int code, std::string_view body, std::string_view verb,
                        std::string_view path, std::string_view why);

struct WatchLine {
  std::string type;  ///< ADDED MODIFIED DELETED BOOKMARK ERROR
  nlohmann::json object;
};
/// One line of a watch stream; nullopt (with `error` set) when it is not a valid event.
std::optional<WatchLine> parse_watch_line(std::string_view line, std::string& error);

}  // namespace lpk::kube::detail
