#pragma once
// What the apiserver does to an object between decoding and storage: name and shape
// validation (422 Invalid), defaulting of the fields clients read back, ClusterIP allocation.

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tools/kubesim/irsa.hpp"
#include "tools/kubesim/network.hpp"
#include "tools/kubesim/resources.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

struct AdmitOptions {
  /// The service range ClusterIPs come from and the one IP family the cluster serves.
  ClusterNetwork network = ClusterNetwork::ipv4();
  /// Makes the "default" ServiceAccount of a namespace when pod admission finds it missing
  /// (the plugin waits for the controller); unset: the pod is refused.
  std::function<void(const std::string& ns)> ensure_default_service_account;
  IrsaOptions irsa;
};

/// Validates and defaults obj for a create (old empty) or an update. Throws ApiError.
json admit(const ResourceType& type, json obj, const std::optional<json>& old, const Store& store,
           const AdmitOptions& opts);

/// "" when name is a valid RFC 1123 subdomain (or label when label is set), else the
/// message a real apiserver gives.
std::string name_problem(const std::string& name, bool label);

/// Pod spec defaults (also applied to workload templates).
void default_pod_spec(json& spec);

/// Keys of obj that the type does not have at the top level or in metadata ("spec.foo" not
/// checked): the "unknown field" list strict field validation reports.
std::vector<std::string> unknown_fields(const ResourceType& type, const json& obj);

}  // namespace lpk::kubesim
