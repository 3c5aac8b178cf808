#pragma once
// What `lpk-proxy connect` changes in the cluster, as pure functions over API objects: which
// workload and container serve a service, the patch that swaps that container for lpk-agent,
// the ConfigMap keeping the original (and the annotation pointing at it), the Secret carrying
// the tunnel secret, and the object that restores the workload. The
// Kubernetes facts underneath (kinds, owners, readiness, rollouts) are kube/objects.hpp's.
// No I/O: takeover.cpp fetches and sends; tests feed objects from files.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kube/client.hpp"
#include "kube/objects.hpp"
#include "proxy/tunnel/protocol.hpp"
#include "proxy/tunnel/route_labels.hpp"

namespace lpk::proxy {

using kube::WorkloadKind;
using kube::WorkloadRef;

/// The annotation that held the pod template as it was, inline, before lpk kept it in a ConfigMap
/// (the template plus kubectl's last-applied-configuration could pass the API server's 256 KiB
/// limit on all annotations together). Still read, so that `restore` repairs older sessions.
inline constexpr const char* kOriginalAnnotation = "lpk.dev/original-template";
/// The annotation naming the ConfigMap (same namespace) that holds the original pod template
/// under kTemplateKey.
inline constexpr const char* kOriginalConfigMapAnnotation = "lpk.dev/original-template-configmap";
inline constexpr const char* kTemplateKey = "template.json";
/// The label on every object a session creates (the template's ConfigMap, the tunnel's
/// Secret, a routed session's agent pods): the session id.
using tunnel::kSessionLabel;
/// The tunnel Secret's key, and the agent container's variable that gets it (secretKeyRef).
inline constexpr const char* kSecretKey = "secret";
inline constexpr const char* kSecretEnv = "LPK_TUNNEL_SECRET";
/// The annotation naming the session that changed the workload (JSON: id, host, pid, started).
inline constexpr const char* kSessionAnnotation = "lpk.dev/session";
/// What lpk installed: the identity (template_identity) of the agent template. `restore`
/// compares it with the template it finds, so that a change someone made during the session (a
/// GitOps sync, `kubectl set image`) is not silently overwritten.
inline constexpr const char* kAgentAnnotation = "lpk.dev/agent-template";

/// On a workload a session created itself (connect with no --service: the agent Deployment of
/// an outbound-only session): the session id. Restoring it means deleting it.
inline constexpr const char* kCreatedBySessionAnnotation = "lpk.dev/created-by-session";

/// A one-line problem with the service or workload, saying what to do.
class WorkloadError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The workload lpk changes for `pod`: its controller, where a ReplicaSet owned by a Deployment
/// is that Deployment (when `replicaset`, the ReplicaSet object, is given); the pod itself when
/// it has no controller. Throws WorkloadError for a controller lpk cannot change.
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

/// The user the agent image runs as (agent/Dockerfile's USER), unless the pod sets runAsUser.
inline constexpr int kAgentUid = 10001;

struct AgentSpec {
  std::string image = "lpk/lpk-agent:dev";
  std::uint16_t tunnel_port = tunnel::kDefaultAgentPort;
  std::vector<std::uint16_t> serve_ports;   // the container's ports the agent takes over
  std::vector<std::string> report_mounts;   // mount paths whose files the agent reports
  std::uint64_t file_limit = 1 << 20;
  std::chrono::milliseconds dead_link_timeout{15'000};  // passed on only when not the default
  std::chrono::milliseconds resume_grace{60'000};       // passed on only when not the default
  std::string session;                      // the kSessionAnnotation value
  std::string template_configmap;  // holds the original (empty: inline, the older form)
  std::string secret_name;         // the tunnel Secret the agent reads (empty: none)
  /// The container keeps its image, user and environment: an init container of `image` copies
  /// the agent with its loader and libraries into an emptyDir (`lpk-agent install`), and the
  /// container runs it from there through that loader (kKeptImageAgentCommand).
  bool keep_image = false;
};

/// Where --keep-image mounts the agent's emptyDir, and the command that runs the agent from it:
/// the layout `lpk-agent install DIR` writes (agent/self_copy.hpp).
inline constexpr const char* kKeptImageAgentDir = "/lpk-agent";
inline constexpr const char* kKeptImageAgentVolume = "lpk-agent";
inline constexpr const char* kKeptImageInitContainer = "lpk-agent-install";
inline constexpr const char* kKeptImageAgentCommand[] = {
    "/lpk-agent/ld.so", "--library-path", "/lpk-agent/lib", "/lpk-agent/lpk-agent"};

/// True when `object` carries lpk's record of an original template (inline or in a ConfigMap).
bool carries_original(const nlohmann::json& object);

/// The name of the ConfigMap holding `object`'s original template; "" when it has none.
std::string original_configmap(const nlohmann::json& object);

/// The mount paths of `container` (its volumeMounts), for `--report-mounts`: the template's and
/// those a live pod of it has besides (what admission added: the service-account token,
/// workload-identity tokens).
std::vector<std::string> mount_paths(const nlohmann::json& pod_spec, const std::string& container,
                                     const nlohmann::json& live_pod_spec = nullptr);

/// The strategic merge patch that records where the original template is (the ConfigMap named by
/// agent.template_configmap; inline when empty) and makes `container` run lpk-agent, reading
/// the tunnel secret from agent.secret_name through a secretKeyRef (never in clear in the
/// spec). Everything else of the container (env, envFrom, volumeMounts, ports, resources,
/// securityContext) and every other container stays as it is; probes and lifecycle hooks go,
/// because they were written for the application, not the agent. With agent.keep_image the
/// image stays too, and the patch adds the init container and emptyDir that bring the agent.
nlohmann::json agent_patch(WorkloadKind kind, const nlohmann::json& object,
                           const std::string& container, const AgentSpec& agent);

/// The pod template with `container` swapped for the agent (what agent_patch produces once
/// the server merges it); used to recreate bare pods and by tests.
nlohmann::json agent_template(const nlohmann::json& pod_template, const std::string& container,
                              const AgentSpec& agent);

/// True when `pod` runs what `pod_template` says in every container of the template (same
/// image and command): the agent's pods after install, the original's after restore.
bool runs_template(const nlohmann::json& pod, const nlohmann::json& pod_template);

/// How to list the pods of a workload: its label selector, or for a bare pod its name.
kube::ListOptions pods_of(const WorkloadRef& ref, const nlohmann::json& object);

/// What identifies what a pod template runs: per container (by name) its image, command, args
/// and literal environment; none of these is defaulted or rewritten by the API server.
nlohmann::json template_identity(const nlohmann::json& pod_template);

/// How `current_template` differs from a template whose identity was `installed` ("container
/// api: image A -> B; ..."), or "" when it does not.
std::string template_change(const nlohmann::json& installed, const nlohmann::json& current_template);

/// A warning when a GitOps tool (Argo CD, Flux) manages `object`: with self-heal or a sync it
/// puts the template back during the session, taking the agent with it. "" when none does.
std::string gitops_warning(const WorkloadRef& ref, const nlohmann::json& object);

/// The original template saved inline (kOriginalAnnotation, the older form), if any.
std::optional<nlohmann::json> saved_template(const nlohmann::json& object);

/// `object` (a fresh GET of the workload) with `original` (its saved template) put back and
/// lpk's annotations removed: send it with PUT so the spec equals the original exactly.
nlohmann::json restored_object(WorkloadKind kind, const nlohmann::json& object,
                               const nlohmann::json& original);

/// A bare pod to create in place of `pod` (fresh object: no uid, resourceVersion, status), with
/// `pod_template` as metadata+spec less spec.nodeName (the scheduler places it again) and
/// spec.ephemeralContainers (create refuses them).
nlohmann::json recreated_pod(const nlohmann::json& pod, const nlohmann::json& pod_template);

}  // namespace lpk::proxy
