#pragma once
// The /scale subresource of deployments, replicasets and statefulsets as the apiserver serves
// it (k/k pkg/registry/apps/<kind>/storage/storage.go, ScaleREST): an autoscaling/v1 Scale
// whose spec.replicas is the workload's and whose status carries the observed replicas and
// the selector as a string. GET reads it; PUT and PATCH (applied to the Scale) write
// spec.replicas only, with the workload's resourceVersion for optimistic concurrency.

#include <nlohmann/json.hpp>
#include <string>

#include "tools/kubesim/routes.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;
class Rest;

/// Whether the type has a scale subresource.
bool has_scale(const ResourceType& t);

/// The Scale of a workload object.
json scale_of(const json& workload);

/// Serves GET, PUT and PATCH on .../NAME/scale. Throws ApiError (404, 405, 409, 422).
json serve_scale(Rest& rest, const Route& r, const std::string& method,
                 const std::string& content_type, const std::string& body);

}  // namespace lpk::kubesim
