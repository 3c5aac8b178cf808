#pragma once
// What `lpk-proxy connect` changes in the cluster, as pure functions over API objects: which
// workload and container serve a service, the patch that swaps that container for lpk-agent,
// the record of the original kept in an annotation, and the object that restores it.
// No I/O: proxy/connect.cpp fetches and sends; tests feed objects from files.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace lpk::proxy {

/// The annotation holding the pod template (or, for a bare pod, the pod spec) as it was.
inline constexpr const char* kOriginalAnnotation = "lpk.dev/original-template";
/// The annotation naming the session that changed the workload (JSON: id, host, pid, started).
inline constexpr const char* kSessionAnnotation = "lpk.dev/session";
/// The port lpk-agent listens on for the tunnel, on the pod's 127.0.0.1 only.
inline constexpr std::uint16_t kAgentTunnelPort = 4590;

/// A one-line problem with the service or workload, saying what to do.
class WorkloadError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class WorkloadKind { deployment, statefulset, replicaset, pod };
const char* to_string(WorkloadKind kind);  // "Deployment", ...
/// The REST collection: "deployments", "statefulsets", "replicasets", "pods".
const char* resource_of(WorkloadKind kind);
/// "apps/v1" or "v1".
const char* group_version_of(WorkloadKind kind);

struct WorkloadRef {
  WorkloadKind kind = WorkloadKind::deployment;
  std::string ns;
  std::string name;
  std::string describe() const;  // "deployment demo/api"
  friend bool operator==(const WorkloadRef&, const WorkloadRef&) = default;
};

/// The owner a pod's controller reference points at. A ReplicaSet owned by a Deployment is
/// reported as that Deployment when `replicaset` (the ReplicaSet object) is given.
WorkloadRef owner_of(const nlohmann::json& pod, const nlohmann::json* replicaset = nullptr);

/// A service port and the container port it reaches.
struct PortRoute {
  std::string name;          // service port name (may be empty)
  std::uint16_t service_port = 0;
  std::uint16_t container_port = 0;
  std::string protocol = "TCP";
};

/// The container of `pod_spec` that serves `service`'s target ports (named target ports are
/// resolved against each container's ports) and the routes to it. `wanted` picks the
/// container by name. Throws WorkloadError when none or several match.
struct ServedContainer {
  std::string name;
  std::vector<PortRoute> routes;
};
ServedContainer served_container(const nlohmann::json& service, const nlohmann::json& pod_spec,
                                 const std::string& wanted = {});

/// The pod template of a workload object (`spec.template`), or for a bare pod the pod itself
/// reduced to metadata.labels/annotations and spec.
nlohmann::json template_of(WorkloadKind kind, const nlohmann::json& object);

struct AgentSpec {
  std::string image = "lpk/lpk-agent:dev";
  std::uint16_t tunnel_port = kAgentTunnelPort;
  std::vector<std::uint16_t> serve_ports;   // the container's ports the agent takes over
  std::vector<std::string> report_mounts;   // mount paths whose files the agent reports
  std::uint64_t file_limit = 1 << 20;
  std::string session;                      // the kSessionAnnotation value
};

/// The mount paths of `container` (its volumeMounts), for `--report-mounts`.
std::vector<std::string> mount_paths(const nlohmann::json& pod_spec, const std::string& container);

/// The strategic merge patch that saves the original template in an annotation and makes
/// `container` run lpk-agent. Everything else of the container (env, envFrom, volumeMounts,
/// ports, resources, securityContext) and every other container stays as it is; probes and
/// lifecycle hooks go, because they were written for the application, not the agent.
nlohmann::json agent_patch(WorkloadKind kind, const nlohmann::json& object,
                           const std::string& container, const AgentSpec& agent);

/// The pod template with `container` swapped for the agent (what agent_patch produces once
/// the server merges it); used to recreate bare pods and by tests.
nlohmann::json agent_template(const nlohmann::json& pod_template, const std::string& container,
                              const AgentSpec& agent);

/// The saved original template, if `object` carries lpk's annotation.
std::optional<nlohmann::json> saved_template(const nlohmann::json& object);

/// `object` (a fresh GET of the workload) with its template put back from the annotation and
/// both lpk annotations removed: send it with PUT so the spec equals the original exactly.
/// Throws WorkloadError when the annotation is missing or unreadable.
nlohmann::json restored_object(WorkloadKind kind, const nlohmann::json& object);

/// A bare pod to create in place of `pod` (fresh object: no uid, resourceVersion, status,
/// nodeName), with `pod_template` as metadata+spec.
nlohmann::json recreated_pod(const nlohmann::json& pod, const nlohmann::json& pod_template);

/// True when `object`'s rollout has finished (k8s-notes §3.2 "Rollout done" for deployments;
/// the equivalent status fields for statefulsets and replicasets).
bool rollout_complete(WorkloadKind kind, const nlohmann::json& object);

/// Label selector text ("k1=v1,k2=v2,k3 in (a,b)") of a workload or a service selector.
std::string selector_text(const nlohmann::json& label_selector);
std::string service_selector_text(const nlohmann::json& service);

/// True for a pod that is Running, Ready and not being deleted.
bool pod_ready(const nlohmann::json& pod);

}  // namespace lpk::proxy
