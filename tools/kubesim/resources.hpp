#pragma once
// The table of resource types kubesim serves: the facts discovery and routing need.

#include <optional>
#include <string>
#include <vector>

namespace lpk::kubesim {

struct ResourceType {
  std::string plural;    // "deployments"
  std::string singular;  // "deployment"
  std::string kind;      // "Deployment"
  std::string group;     // "" for core, "apps", "discovery.k8s.io"
  std::string version;   // "v1"
  bool namespaced = true;
  std::vector<std::string> short_names;
  bool has_status = false;      // serves the /status subresource
  bool dns_label_name = false;  // names must be RFC 1123 labels, not subdomains
  /// The verbs discovery lists; empty means the full set (create, get, list, watch...).
  std::vector<std::string> verbs = {};

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  std::string list_kind() const { return kind + "List"; }
};

/// Every type kubesim serves, in discovery order.
const std::vector<ResourceType>& resource_types();

/// The type served at (group, version, plural), if any.
const ResourceType* find_resource(const std::string& group, const std::string& version,
                                  const std::string& plural);

/// The type for a plural name alone (plural names are unique across kubesim's groups).
const ResourceType& resource_by_plural(const std::string& plural);

}  // namespace lpk::kubesim
