#pragma once
// The cluster half of `lpk-proxy connect`: finds the workload behind a service, swaps the
// serving container for lpk-agent, waits for the rollout, and puts everything back.
// Blocking calls through kube::Client; run from the main thread or a worker, never the io thread.
//
// Crash safety: before the workload is changed, a record naming it is written to the state
// directory (<state>/sessions/<id>.json); the original template is kept in a ConfigMap owned by
// the workload (lpk-original-<id>), which an annotation of the workload names. `lpk-proxy
// restore` walks the records of sessions whose process is gone, and `restore --all` the
// annotations themselves.
//
// Tunnel secret: each session's agents get theirs from a Secret (lpk-session-<id>, created
// before the workload changes, deleted with the restore) through a secretKeyRef variable.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kube/client.hpp"
#include "proxy/control/console.hpp"
#include "proxy/takeover/route_objects.hpp"
#include "proxy/takeover/session_record.hpp"
#include "proxy/takeover/workload.hpp"

namespace lpk::proxy {

/// What connect found: the service, the workload and the container to replace.
struct TakeoverTarget {
  nlohmann::json service;
  WorkloadRef workload;
  nlohmann::json object;  ///< the workload as last read
  ServedContainer container;
  std::vector<std::string> mounts;
  std::uint16_t tunnel_port = tunnel::kDefaultAgentPort;  ///< where the agent listens (set by install)
  /// A routed session (route_objects.hpp): `workload` is the session's own Deployment, and
  /// these are the workload whose pod template it copies and that template.
  std::optional<RouteSpec> route;
  WorkloadRef source;
  nlohmann::json source_template;
};

struct TakeoverOptions {
  std::string service;
  std::string ns;
  std::string container;  ///< empty: the one serving the service's ports
  std::string agent_image = "lpk/lpk-agent:dev";
  std::uint64_t file_limit = 1 << 20;
  std::chrono::seconds rollout_timeout{180};
  std::chrono::milliseconds dead_link_timeout{15'000};  ///< of the agent's end of the tunnel
  std::chrono::milliseconds resume_grace{60'000};       ///< how long the agent keeps streams
  std::string tunnel_secret;  ///< what the agents must be proven (empty: no Secret, no proof)
  /// How long the heartbeat may go unrenewed before the restorer restores the workload
  /// (restorer.hpp); 0: no heartbeat, no restorer.
  std::chrono::seconds orphan_timeout{600};
  /// The container keeps its image; an init container brings the agent (AgentSpec::keep_image).
  bool keep_image = false;
  /// Routed by this header instead of replacing the workload (route_objects.hpp).
  std::optional<RouteSpec> route;
};

/// The agent that replaces the target's container: the ports it serves in its place, and a
/// tunnel port free in the pod's network namespace (which sidecars share).
AgentSpec agent_for(const TakeoverTarget& target, const TakeoverOptions& options,
                    const SessionOwner& owner);

class Takeover {
 public:
  Takeover(kube::Client& client, console::Progress& progress) : client_(client), progress_(progress) {}

  /// Waits end early (WorkloadError "interrupted") once `*flag` is true; null: never.
  void set_cancel(const std::atomic<bool>* flag) { cancel_ = flag; }

  /// Set in the restorer itself: restore() then leaves the restorer's own objects (its rights)
  /// for remove_restorer_from_inside, once the restore has finished.
  void set_inside_restorer(bool inside) { inside_restorer_ = inside; }

  /// Service -> pods -> owning workload -> serving container. Throws WorkloadError or
  /// kube::ApiError with one sentence.
  TakeoverTarget locate(const TakeoverOptions& options);

  /// Deals with an earlier session's annotation on `target`: a session of this machine whose
  /// process is gone is repaired (restored first); a live one, or one from another machine,
  /// is refused with what to do. Re-reads target.object when it repaired.
  void settle_earlier_session(TakeoverTarget& target);

  /// Saves the original and patches the container to run lpk-agent (bare pods are
  /// recreated; a ReplicaSet's pods are deleted so it makes new ones).
  void install_agent(TakeoverTarget& target, const TakeoverOptions& options, const SessionOwner& owner);

  /// The target of an outbound-only session (connect with no --service) in `ns`: the agent
  /// Deployment of its own that install_outbound_agent creates. Replaces nothing.
  TakeoverTarget outbound_target(const std::string& ns, const std::string& session_id);

  /// Creates that Deployment with 0 replicas, the tunnel Secret owned by it (so that deleting
  /// the Deployment takes everything), then scales it to one replica.
  void install_outbound_agent(TakeoverTarget& target, const TakeoverOptions& options,
                              const SessionOwner& owner);

  /// The target of a routed session (options.route): what locate() finds, with the session's
  /// own agent Deployment as the workload. Refuses a workload a session replaced, and a header
  /// and value another session routes already.
  TakeoverTarget routed_target(const TakeoverOptions& options, const std::string& session_id);

  /// Creates the session's agent Deployment (with its tunnel Secret and restorer), then joins
  /// the route: the first session creates the router and lpk's Service of the original pods
  /// and points the Service at the router; each adds itself to the Service's sessions.
  void install_routed_agent(TakeoverTarget& target, const TakeoverOptions& options,
                            const SessionOwner& owner);

  /// Session `session_id` stops routing `service`: out of the Service's sessions, and when it
  /// was the last, the Service gets its selector back and the router goes (waited for).
  void leave_route(const std::string& ns, const std::string& service,
                   const std::string& session_id);

  /// The sessions of routed Services in `ns` (empty: all namespaces) whose Deployment is gone
  /// (a crash between its removal and leave_route) leave their routes.
  void prune_routes(const std::string& ns);

  /// Waits until every replica runs the agent and is ready; returns those pods.
  std::vector<nlohmann::json> wait_for_agents(const TakeoverTarget& target,
                                              const TakeoverOptions& options);

  /// Puts the saved template back (exact spec, PUT with retry on conflicts) and waits until
  /// the original pods are ready; a Deployment's agent ReplicaSet is then deleted. Refuses
  /// (WorkloadError) when the template is no longer the agent's lpk installed, unless `force`.
  /// Returns false when there was nothing to restore.
  bool restore(const WorkloadRef& workload, std::chrono::seconds timeout, bool force = false);

  /// Every workload in `ns` (empty: all namespaces) that carries lpk's annotation, but not the
  /// ReplicaSets of a Deployment (which carry it as a copy).
  std::vector<WorkloadRef> changed_workloads(const std::string& ns);

  /// The original template `object` records: from its ConfigMap, or inline (older sessions).
  /// nullopt when it records none; WorkloadError when it names a ConfigMap that is gone.
  std::optional<nlohmann::json> original_template(const WorkloadRef& ref,
                                                  const nlohmann::json& object);

  /// Deletes session `session_id`'s tunnel Secret in `ns` (gone already: nothing to do).
  void remove_tunnel_secret(const std::string& ns, const std::string& session_id);

  /// Creates session `owner.id`'s heartbeat Lease and restorer (restorer.hpp) for `target`;
  /// nothing when options.orphan_timeout is 0. Throws WorkloadError (with what to ask for)
  /// when RBAC refuses; whatever it made is removed first.
  void create_restorer(const TakeoverTarget& target, const TakeoverOptions& options,
                       const SessionOwner& owner);

  /// Deletes session `session_id`'s restorer (its Job with its pods, RoleBinding, Role,
  /// ServiceAccount) and heartbeat Lease in `ns`; what is gone already is fine.
  void remove_restorer(const std::string& ns, const std::string& session_id);

  /// The same, as the restorer itself does it with only its own rights: the session's ConfigMap
  /// and Lease, then its ServiceAccount, whose dependents (the Job with the restorer's pod, the
  /// Role, the RoleBinding) the garbage collector takes.
  void remove_restorer_from_inside(const std::string& ns, const std::string& session_id);

  /// Deletes the tunnel Secrets in `ns` whose session ran on this machine and is gone (a crash
  /// after the Secret was made, before the workload changed, leaves nothing else to find it by).
  void remove_secrets_of_dead_sessions(const std::string& ns);

 private:
  /// A workload that another controller manages (an operator, Knative, Argo Rollouts) cannot be
  /// taken over: that controller would revert the change.
  void refuse_managed(const WorkloadRef& ref, const nlohmann::json& object);
  void refuse_changed(const WorkloadRef& ref, const nlohmann::json& object,
                      const nlohmann::json& installed);
  void remove_agent_replicasets(const WorkloadRef& ref, const nlohmann::json& deployment,
                                const nlohmann::json& installed);
  nlohmann::json list_pods(const WorkloadRef& ref, const nlohmann::json& object);
  /// What a rollout looks like now: the workload, its active pods, and why it cannot finish.
  struct RolloutView {
    nlohmann::json object;
    nlohmann::json live;  ///< active pods (kube::pod_active)
    int ready = 0;
    std::int64_t wanted = 1;
    bool complete = false;  ///< the controller says it is done
    std::string failure;    ///< kube::rollout_failure; empty when nothing says it is stuck
  };
  /// `watched` picks the pods whose containers' failures count (null: all).
  RolloutView observe(const WorkloadRef& ref,
                      const std::function<bool(const nlohmann::json& pod)>& watched);
  /// Polls until the rollout is complete and `pods_done`. With `fail_fast_on`, a rollout that
  /// cannot finish (the workload's conditions, or a failing pod it picks) ends the wait at once
  /// with the reason; without it, the reason is shown while waiting.
  void wait_rollout(const WorkloadRef& ref, std::chrono::seconds timeout,
                    const std::function<bool(const nlohmann::json& pods)>& pods_done,
                    const std::string& what,
                    const std::function<bool(const nlohmann::json& pod)>& fail_fast_on = {});
  void recreate_pod(const WorkloadRef& ref, const nlohmann::json& pod,
                    const nlohmann::json& pod_template, std::chrono::seconds timeout);
  /// Creates the session's ConfigMap (the original) and Secret (the tunnel's) before the
  /// workload changes: pods referring to a missing Secret would not start.
  void create_session_objects(const TakeoverTarget& target, const TakeoverOptions& options,
                              const SessionOwner& owner, AgentSpec& agent);
  /// After the original template is back: deletes the agent pods that the workload's controller
  /// would not replace by itself (ReplicaSet, OnDelete, a StatefulSet's unready pods).
  void remove_pods_the_controller_keeps(const WorkloadRef& ref, const nlohmann::json& object,
                                        const nlohmann::json& original);
  /// The agent Deployment `body` of a session that creates its own (outbound-only, routed):
  /// created with 0 replicas, then its tunnel Secret owned by it, then one replica.
  void create_agent_deployment(TakeoverTarget& target, const TakeoverOptions& options,
                               const SessionOwner& owner, const nlohmann::json& body,
                               const std::string& why);
  /// The router of `service` and lpk's Service of its original pods, made when missing (one
  /// being deleted is waited for and made again), and waited for until ready.
  void ensure_router(const nlohmann::json& service, const TakeoverTarget& target,
                     const TakeoverOptions& options);
  /// Deletes the router of `service` with its rights and lpk's Service, and waits for its
  /// pods to go.
  void remove_router(const std::string& ns, const std::string& service);
  /// Replaces the Service with `change(fresh copy)` (PUT), reading it again on a conflict;
  /// writes nothing when that is the Service as read.
  void update_service(const std::string& ns, const std::string& service,
                      const std::function<nlohmann::json(const nlohmann::json&)>& change);
  /// Creates `body` at `path`; when it exists, returns it (or, while it is being deleted,
  /// waits for it to go and creates it again).
  nlohmann::json create_or_reuse(const std::string& path, const nlohmann::json& body);
  /// Restore of a workload a session created: deletes it and waits for its pods to go.
  void remove_created_workload(const WorkloadRef& ref, const nlohmann::json& object,
                               std::chrono::seconds timeout);
  /// Deletes `path` (with `propagation`, when given); already gone is fine.
  void remove_if_present(const std::string& path, std::string_view propagation = {});
  /// Deletes what the session recorded on `object` created: the original's ConfigMap, the
  /// tunnel Secret. Called once the original template is written back.
  void remove_session_objects_of(const WorkloadRef& ref, const nlohmann::json& object);
  /// The kubectl command that makes a workload forget lpk's record, keeping its template.
  static std::string forget_command(const WorkloadRef& ref);

  kube::Client& client_;
  console::Progress& progress_;
  const std::atomic<bool>* cancel_ = nullptr;
  bool inside_restorer_ = false;
};

}  // namespace lpk::proxy
