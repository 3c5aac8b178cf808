#pragma once
// The objects a `connect` session creates beside the workload, as pure functions: the ConfigMap
// that keeps the original pod template (the workload only names it in an annotation: the
// template plus kubectl's last-applied-configuration could pass the API server's 256 KiB limit
// on all annotations together) and the Secret that carries the tunnel secret to the agents.
// Both are labelled kSessionLabel=<session id> and, unless the workload is a bare pod, owned by
// it, so that they go when it goes.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "proxy/takeover/workload.hpp"

namespace lpk::proxy {

/// The API paths of Leases and of Roles and RoleBindings in `ns` (with `name`: one of them).
inline std::string lease_path(const std::string& ns, const std::string& name = {}) {
  return kube::resource_path("coordination.k8s.io/v1", ns, "leases", name);
}
inline std::string rbac_path(const std::string& ns, const char* resource,
                             const std::string& name = {}) {
  return kube::resource_path("rbac.authorization.k8s.io/v1", ns, resource, name);
}

/// The names of the objects session `id` creates in the workload's namespace.
std::string template_configmap_name(const std::string& session_id);
std::string tunnel_secret_name(const std::string& session_id);

/// An ownerReference to the workload, so that the objects of its session go when it goes; null
/// for a bare pod, which lpk itself deletes and recreates (a new uid).
nlohmann::json owner_reference(const WorkloadRef& ref, const nlohmann::json& object);

/// The ConfigMap that keeps `pod_template` (exactly, as JSON text) for session `session_id`.
nlohmann::json template_configmap(const WorkloadRef& ref, const nlohmann::json& object,
                                  const std::string& session_id,
                                  const nlohmann::json& pod_template);

/// The template a ConfigMap made by template_configmap holds; nullopt when unreadable.
std::optional<nlohmann::json> template_in_configmap(const nlohmann::json& configmap);

/// The Secret carrying the tunnel secret of session `session_id` to its agents; `owner` (the
/// kSessionAnnotation value) tells a later `connect` or `restore` whether the session is gone.
nlohmann::json tunnel_secret(const WorkloadRef& ref, const nlohmann::json& object,
                             const std::string& session_id, const std::string& owner,
                             const std::string& secret);

/// The Deployment an outbound-only session (connect with no --service) runs its agent in.
std::string outbound_deployment_name(const std::string& session_id);

/// That Deployment: one replica of lpk-agent as `agent` describes it, created with 0 replicas
/// (its tunnel Secret, which the pod needs to start, is made next and owned by it). Its labels
/// are lpk's own, so no Service of the application selects it; kCreatedBySessionAnnotation
/// tells `restore` to delete it rather than put a template back.
nlohmann::json outbound_deployment(const std::string& ns, const std::string& session_id,
                                   const AgentSpec& agent);

/// True when lpk created `object` for a session (kCreatedBySessionAnnotation).
bool created_by_session(const nlohmann::json& object);

}  // namespace lpk::proxy
