#pragma once
// The pods/eviction subresource (k/k pkg/registry/core/pod/storage/eviction.go): POST an
// policy/v1 Eviction and the pod is deleted as a DELETE would delete it (gracefully when
// pods run), answering 201 with a Success Status. kubesim has no PodDisruptionBudgets, so
// no eviction is refused for one. A pod that has already ended (Failed or Succeeded) is
// deleted at once, as the real registry does for terminal pods.

#include <nlohmann/json.hpp>
#include <string>

#include "tools/kubesim/rest.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

/// Serves POST on r (pods, sub "eviction"). Throws ApiError (400 for a body that is not an
/// Eviction of this pod, 404 for a missing pod, 405 for other methods).
json serve_eviction(Rest& rest, const Route& r, const std::string& method, const std::string& body);

}  // namespace lpk::kubesim
