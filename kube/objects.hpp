#pragma once
// Facts about Kubernetes objects, as the controllers and kubectl read them: workload kinds and
// their REST paths, controller references, pod readiness, rollout completion, label selectors in
// kubectl syntax, pod templates and service target ports. Pure functions over JSON objects as
// the API server returns them; missing or mistyped fields read as absent, never throw.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace lpk::kube {

enum class WorkloadKind { deployment, statefulset, replicaset, pod };
const char* to_string(WorkloadKind kind);  ///< "Deployment", "StatefulSet", "ReplicaSet", "Pod"
/// The kind named `kind` ("Deployment", ...), if it is one of the four.
std::optional<WorkloadKind> workload_kind(std::string_view kind);
/// The REST collection: "deployments", "statefulsets", "replicasets", "pods".
const char* resource_of(WorkloadKind kind);
/// "apps/v1" or "v1".
const char* group_version_of(WorkloadKind kind);

struct WorkloadRef {
  WorkloadKind kind = WorkloadKind::deployment;
  std::string ns;
  std::string name;
  std::string describe() const;  ///< "deployment demo/api"
  std::string path() const;      ///< "/apis/apps/v1/namespaces/demo/deployments/api"
  friend bool operator==(const WorkloadRef&, const WorkloadRef&) = default;
};

/// An object's controller reference (metadata.ownerReferences[] with controller: true).
struct ControllerRef {
  std::string kind;  ///< as written: "ReplicaSet", "Deployment", "Rollout", ...
  std::string name;
  std::string api_version;
  std::string uid;
};
std::optional<ControllerRef> controller_of(const nlohmann::json& object);

/// The field `key` of `object`, or a null JSON value when `object` is not an object or lacks it.
const nlohmann::json& field(const nlohmann::json& object, const char* key);
/// The string at `value`, or "" when it is not a string.
std::string text_of(const nlohmann::json& value);

/// The pod template of a workload object (`spec.template`), or for a bare pod the pod itself
/// reduced to metadata.labels/annotations and spec.
nlohmann::json template_of(WorkloadKind kind, const nlohmann::json& object);

/// True for a pod that counts for its controller (IsPodActive in k/k controller_utils.go): not
/// Succeeded, not Failed (an evicted or preempted pod stays listed as Failed), not being deleted.
bool pod_active(const nlohmann::json& pod);

/// True for a pod that is Running, Ready and not being deleted.
bool pod_ready(const nlohmann::json& pod);

/// True when `object`'s rollout has finished: for a Deployment observedGeneration has caught
/// up and updated, total and available replicas all equal spec.replicas (kubectl rollout
/// status); the equivalent status fields for StatefulSets and ReplicaSets; a bare pod when it
/// is ready.
bool rollout_complete(WorkloadKind kind, const nlohmann::json& object);

/// A StatefulSet's rolling-update partition: pods with a lower ordinal keep the old revision
/// (0 when there is none, or the strategy is OnDelete).
std::int64_t statefulset_partition(const nlohmann::json& statefulset);

/// True for a StatefulSet with updateStrategy OnDelete: its controller never replaces a pod
/// when the template changes; whoever changes it deletes the pods.
bool updates_on_delete(WorkloadKind kind, const nlohmann::json& object);

/// The ordinal of a StatefulSet's pod (the number after the last '-' of its name), or -1.
std::int64_t pod_ordinal(const nlohmann::json& pod);

/// Why a rollout cannot finish, as `kubectl rollout status` and `kubectl describe` would tell:
/// a Deployment's Progressing=False ProgressDeadlineExceeded, a ReplicaFailure condition
/// (FailedCreate: quota, admission), or a container of `pods` waiting for a reason that does not
/// clear by itself (ErrImagePull, ImagePullBackOff, InvalidImageName, CrashLoopBackOff,
/// CreateContainerConfigError, CreateContainerError, RunContainerError). Conditions count only
/// once the controller has observed the workload's generation. Empty when nothing says so (the
/// rollout may still be slow).
std::string rollout_failure(const nlohmann::json& workload, const nlohmann::json& pods);

/// Label selector text in kubectl syntax ("k1=v1,k2=v2,k3 in (a,b),!k4") of a LabelSelector
/// (matchLabels and matchExpressions), or of a Service's plain spec.selector map.
std::string selector_text(const nlohmann::json& label_selector);
std::string service_selector_text(const nlohmann::json& service);

/// A Service port's targetPort: a number, or the name of a container port. Absent means the
/// service port's own number; a numeric string ("8080") means the number.
struct TargetPort {
  std::uint16_t number = 0;
  std::string name;
};
TargetPort target_port_of(const nlohmann::json& service_port);

/// The port `target` reaches in `container` (kubectl's translateServicePortToTargetPort): a
/// named port must be declared by the container; a number reaches it declared or not.
/// `declared` tells whether the container lists the port.
std::optional<std::uint16_t> container_port_for(const TargetPort& target,
                                                const nlohmann::json& container, bool& declared);

/// Every containerPort that the containers and init containers (sidecars) of `pod_spec` declare:
/// they share the pod's network namespace, so any of them may be listening there.
std::set<std::uint16_t> declared_ports(const nlohmann::json& pod_spec);

}  // namespace lpk::kube
