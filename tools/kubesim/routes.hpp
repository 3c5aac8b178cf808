#pragma once
// Request targets: which resource, namespace, name and subresource a path names, and the
// decoded query parameters. Pure.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "tools/kubesim/resources.hpp"

namespace lpk::kubesim {

struct Route {
  const ResourceType* type = nullptr;
  std::string ns;    // empty for cluster-scoped types and all-namespace lists
  std::string name;  // empty for collections
  std::string sub;   // "status", "portforward", ...
};

/// Parses "/api/v1/namespaces/default/pods/x/status" and "/apis/apps/v1/deployments".
/// nullopt when the path names no resource kubesim serves.
std::optional<Route> parse_route(std::string_view path);

/// Splits "a=1&b=x%2Cy" into decoded pairs (the last of repeated keys wins, except that
/// repeated "ports" values are joined with commas).
std::map<std::string, std::string> parse_query(std::string_view query);

std::string url_decode(std::string_view s);

}  // namespace lpk::kubesim
