#include "proxy/takeover/takeover.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "proxy/takeover/session_objects.hpp"

namespace lpk::proxy {

using nlohmann::json;
using namespace std::chrono_literals;

json Takeover::list_pods(const WorkloadRef& ref, const json& object) {
  return client_.list(kube::resource_path("v1", ref.ns, "pods"), pods_of(ref, object));
}

TakeoverTarget Takeover::locate(const TakeoverOptions& options) {
  TakeoverTarget target;
  try {
    target.service = client_.get(kube::resource_path("v1", options.ns, "services", options.service));
  } catch (const kube::ApiError& e) {
    if (e.code != 404) throw;
    throw WorkloadError("service " + options.service + " not found in namespace " + options.ns +
                        "; `kubectl get services -n " + options.ns + "` lists them");
  }
  auto routed_by = route_members(target.service);
  if (!routed_by.empty() && !options.route) {
    std::string ids;
    for (const auto& [id, member] : routed_by) ids += (ids.empty() ? "" : ", ") + id;
    throw WorkloadError("service " + options.service + " is shared through lpk's router by "
                        "session(s) " + ids + " (header routing); connect with --route-header "
                        "too, or after they end (`lpk-proxy routes -n " + options.ns + "`)");
  }
  // A routed Service selects the router; the workload is behind the selector it had.
  auto selector = kube::service_selector_text(
      json{{"spec", {{"selector", original_selector(target.service)}}}});
  if (selector.empty()) {
    throw WorkloadError("service " + options.service + " has no selector, so no pods of its "
                        "own for lpk to replace; connect to a service that selects pods");
  }
  kube::ListOptions selected;
  selected.label_selector = selector;
  auto pods = client_.list(kube::resource_path("v1", options.ns, "pods"), selected)["items"];
  const json* pod = nullptr;
  for (const auto& p : pods) {
    if (kube::pod_active(p)) pod = &p;
    if (pod) break;
  }
  if (!pod) {
    throw WorkloadError("service " + options.service + " selects no pods (" + selector +
                        "); start its workload first");
  }
  json replicaset;
  for (const auto& owner : (*pod)["metadata"].value("ownerReferences", json::array())) {
    if (owner.value("kind", "") == "ReplicaSet" && owner.value("controller", false)) {
      replicaset = client_.get(kube::resource_path("apps/v1", options.ns, "replicasets",
                                                   owner.value("name", "")));
    }
  }
  target.workload = owner_of(*pod, replicaset.is_null() ? nullptr : &replicaset);
  target.object = target.workload.kind == WorkloadKind::pod ? *pod
                                                            : client_.get(target.workload.path());
  refuse_managed(target.workload, target.object);
  // If an earlier session left the agent in place, the original is where it recorded it.
  auto tmpl = original_template(target.workload, target.object)
                  .value_or(kube::template_of(target.workload.kind, target.object));
  target.container = served_container(target.service, tmpl["spec"], options.container);
  // Admission adds mounts to the Pod, not to the template (the service-account token,
  // workload-identity tokens such as IRSA's): a live pod has them.
  target.mounts = mount_paths(tmpl["spec"], target.container.name, (*pod)["spec"]);
  return target;
}

void Takeover::settle_earlier_session(TakeoverTarget& target) {
  remove_secrets_of_dead_sessions(target.workload.ns);
  const auto annotations = target.object["metadata"].value("annotations", json::object());
  if (!annotations.contains(kSessionAnnotation) && !carries_original(target.object)) return;
  auto owner = SessionOwner::from_json(
      json::parse(annotations.value(kSessionAnnotation, "{}"), nullptr, false));
  auto what = target.workload.describe();
  if (owner.alive_here()) {
    throw WorkloadError(what + " is already connected by lpk session " + owner.id + " (pid " +
                        std::to_string(owner.pid) + " on this machine); stop that session first");
  }
  if (!owner.host.empty() && !owner.on_this_host()) {
    throw WorkloadError(what + " was changed by lpk session " + owner.id + " on host " +
                        owner.host + "; if that session is gone, run `lpk-proxy restore --all -n " +
                        target.workload.ns + "` and connect again");
  }
  progress_.step("repairing " + what + ", left changed by lpk session " +
                 (owner.id.empty() ? std::string("(unknown)") : owner.id) + " which is gone");
  restore(target.workload, 180s);
  if (!owner.id.empty()) SessionRecord{owner, target.workload, {}, {}}.erase();  // repaired
  target.object = client_.get(target.workload.path());
}

AgentSpec agent_for(const TakeoverTarget& target, const TakeoverOptions& options,
                    const SessionOwner& owner) {
  AgentSpec agent;
  agent.image = options.agent_image;
  agent.keep_image = options.keep_image;
  agent.file_limit = options.file_limit;
  agent.dead_link_timeout = options.dead_link_timeout;
  agent.resume_grace = options.resume_grace;
  agent.report_mounts = target.mounts;
  agent.session = owner.to_json().dump();
  std::set<std::uint16_t> ports;
  for (const auto& route : target.container.routes) {
    if (route.protocol == "TCP" && ports.insert(route.container_port).second) {
      agent.serve_ports.push_back(route.container_port);
    }
  }
  auto taken = kube::declared_ports(
      (target.source_template.is_null() ? kube::template_of(target.workload.kind, target.object)
                                        : target.source_template)["spec"]);
  taken.insert(ports.begin(), ports.end());
  while (taken.count(agent.tunnel_port)) ++agent.tunnel_port;
  return agent;
}

void Takeover::install_agent(TakeoverTarget& target, const TakeoverOptions& options,
                             const SessionOwner& owner) {
  AgentSpec agent = agent_for(target, options, owner);
  target.tunnel_port = agent.tunnel_port;
  auto original = kube::template_of(target.workload.kind, target.object);
  const auto& ref = target.workload;
  create_session_objects(target, options, owner, agent);
  try {
    create_restorer(target, options, owner);
  } catch (const std::exception&) {
    remove_if_present(kube::resource_path("v1", ref.ns, "configmaps", agent.template_configmap));
    throw;
  }
  progress_.step("replacing container " + target.container.name + " of " + ref.describe() +
                 (agent.keep_image ? " with lpk-agent from " + agent.image + " (its image kept)"
                                   : " with " + agent.image));
  if (ref.kind == WorkloadKind::pod) {
    auto tmpl = agent_template(original, target.container.name, agent);
    tmpl["metadata"]["annotations"][kOriginalConfigMapAnnotation] = agent.template_configmap;
    tmpl["metadata"]["annotations"][kSessionAnnotation] = agent.session;
    tmpl["metadata"]["annotations"][kAgentAnnotation] = template_identity(tmpl).dump();
    recreate_pod(ref, target.object, tmpl, options.rollout_timeout);
    target.object = client_.get(ref.path());
    return;
  }
  try {
    target.object = client_.patch(ref.path(), agent_patch(ref.kind, target.object,
                                                            target.container.name, agent));
  } catch (const std::exception&) {
    // Unchanged, so nothing points at the original's copy (the Secret goes with the restore).
    remove_if_present(kube::resource_path("v1", ref.ns, "configmaps", agent.template_configmap));
    remove_restorer(ref.ns, owner.id);
    throw;
  }
  if (auto partition = kube::statefulset_partition(target.object); partition > 0) {
    progress_.step(ref.describe() + " has partition " + std::to_string(partition) +
                   ": its pods from ordinal " + std::to_string(partition) +
                   " up run the agent; the lower ones keep the original and still serve part "
                   "of the service's traffic");
  }
  if (ref.kind == WorkloadKind::replicaset || kube::updates_on_delete(ref.kind, target.object)) {
    // A ReplicaSet, and a StatefulSet whose strategy is OnDelete, do not replace running pods
    // when the template changes; make them.
    // A copy: a range-for over a member of the temporary list would outlive the list.
    auto pods = list_pods(ref, target.object)["items"];
    for (const auto& pod : pods) {
      client_.remove(kube::resource_path("v1", ref.ns, "pods", pod["metadata"].value("name", "")));
    }
  }
}

namespace {

std::int64_t replicas_of(WorkloadKind kind, const json& object) {
  if (kind == WorkloadKind::pod) return 1;
  const auto& spec = object["spec"];
  return spec.contains("replicas") && spec["replicas"].is_number_integer()
             ? spec["replicas"].get<std::int64_t>()
             : 1;
}

}  // namespace

Takeover::RolloutView Takeover::observe(const WorkloadRef& ref,
                                        const std::function<bool(const json& pod)>& watched) {
  RolloutView view;
  if (ref.kind != WorkloadKind::pod) view.object = client_.get(ref.path());
  auto pods = list_pods(ref, view.object)["items"];
  view.live = json::array();
  for (const auto& pod : pods) {
    // Evicted, preempted or finished pods stay listed; controllers do not count them.
    if (!kube::pod_active(pod)) continue;
    view.live.push_back(pod);
    view.ready += kube::pod_ready(pod) ? 1 : 0;
  }
  view.wanted = ref.kind == WorkloadKind::pod ? 1 : replicas_of(ref.kind, view.object);
  view.complete = ref.kind == WorkloadKind::pod || kube::rollout_complete(ref.kind, view.object);
  json watched_pods = json::array();
  for (const auto& pod : view.live) {
    if (!watched || watched(pod)) watched_pods.push_back(pod);
  }
  view.failure = kube::rollout_failure(view.object, watched_pods);
  return view;
}

void Takeover::wait_rollout(const WorkloadRef& ref, std::chrono::seconds timeout,
                            const std::function<bool(const json& pods)>& pods_done,
                            const std::string& what,
                            const std::function<bool(const json& pod)>& fail_fast_on) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string state;
  for (;;) {
    auto view = observe(ref, fail_fast_on);
    bool done = view.complete && static_cast<std::int64_t>(view.live.size()) == view.wanted &&
                pods_done(view.live);
    state = what + ": " + std::to_string(view.ready) + " of " + std::to_string(view.wanted) +
            " pods ready, " + std::to_string(view.live.size()) + " in total";
    if (done) break;
    if (!view.failure.empty() && fail_fast_on) {
      progress_.done();
      throw WorkloadError(what + " cannot finish: " + view.failure);
    }
    if (!view.failure.empty()) state += " (" + view.failure + ")";
    progress_.waiting(state);
    if (cancel_ && cancel_->load()) {
      progress_.done();
      throw WorkloadError(what + " interrupted (" + state + ")");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      progress_.done();
      throw WorkloadError(what + " did not finish within " + std::to_string(timeout.count()) +
                          " s (" + state + "); `kubectl describe " +
                          std::string(resource_of(ref.kind)) + " " + ref.name + " -n " + ref.ns +
                          "` shows why");
    }
    std::this_thread::sleep_for(500ms);
  }
  progress_.step(state);  // replaces the waiting line on a terminal
}

std::vector<json> Takeover::wait_for_agents(const TakeoverTarget& target,
                                            const TakeoverOptions& options) {
  const auto& ref = target.workload;
  auto tmpl = kube::template_of(ref.kind, target.object);
  auto partition = kube::statefulset_partition(target.object);  // below it: the original
  std::vector<json> agents;
  wait_rollout(ref, options.rollout_timeout,
               [&](const json& pods) {
                 agents.clear();
                 for (const auto& pod : pods) {
                   if (partition > 0 && kube::pod_ordinal(pod) < partition) continue;
                   if (!runs_template(pod, tmpl) || !kube::pod_ready(pod)) return false;
                   agents.push_back(pod);
                 }
                 return true;
               },
               "rollout of lpk-agent in " + ref.describe(),
               // The agent's own pods failing ends the wait; the old pods may crash as they did.
               [&](const json& pod) { return runs_template(pod, tmpl); });
  return agents;
}

void Takeover::recreate_pod(const WorkloadRef& ref, const json& pod, const json& pod_template,
                            std::chrono::seconds timeout) {
  auto path = ref.path();
  client_.remove(path);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    try {
      client_.get(path);
    } catch (const kube::ApiError& e) {
      if (e.code == 404) break;
      throw;
    }
    progress_.waiting("waiting for pod " + ref.ns + "/" + ref.name + " to go");
    if (std::chrono::steady_clock::now() > deadline) {
      throw WorkloadError("pod " + ref.ns + "/" + ref.name + " was not deleted within " +
                          std::to_string(timeout.count()) + " s");
    }
    std::this_thread::sleep_for(200ms);
  }
  progress_.done();
  client_.create(kube::resource_path("v1", ref.ns, "pods"), recreated_pod(pod, pod_template));
}

void Takeover::refuse_managed(const WorkloadRef& ref, const json& object) {
  if (ref.kind == WorkloadKind::pod) return;  // a pod's controller was followed by owner_of
  if (auto owner = kube::controller_of(object)) {
    throw WorkloadError(ref.describe() + " is managed by " + owner->kind + " " + owner->name +
                        ", whose controller would put its template back at once; connect to " +
                        "the workload that " + owner->kind + " " + owner->name + " makes " +
                        "only if it can be paused, or run that service locally another way");
  }
}

void Takeover::refuse_changed(const WorkloadRef& ref, const json& object,
                              const json& installed) {
  auto change = template_change(installed, kube::template_of(ref.kind, object));
  if (change.empty()) return;
  auto kind = std::string(to_string(ref.kind));
  throw WorkloadError(
      ref.describe() + "'s template was changed during the lpk session (" + change +
      "); restoring would undo that change. `lpk-proxy restore --force` restores the saved "
      "template anyway; " + forget_command(ref) + " keeps the current one");
}

void Takeover::remove_agent_replicasets(const WorkloadRef& ref, const json& deployment,
                                        const json& installed) {
  // The Deployment controller keeps the agent's ReplicaSet (scaled to 0) as a revision:
  // `kubectl rollout undo` would bring the agent back, and it carries lpk's annotations, copied
  // from the Deployment. It goes once the original runs again.
  auto uid = deployment["metadata"].value("uid", "");
  kube::ListOptions selected;
  selected.label_selector = kube::selector_text(deployment["spec"]["selector"]);
  auto sets = client_.list(kube::resource_path("apps/v1", ref.ns, "replicasets"), selected);
  for (const auto& rs : sets.value("items", json::array())) {
    auto owner = kube::controller_of(rs);
    if (!owner || owner->uid != uid) continue;
    if (rs["spec"].value("replicas", 0) != 0) continue;
    if (!template_change(installed, rs["spec"]["template"]).empty()) continue;
    try {
      client_.remove(kube::resource_path("apps/v1", ref.ns, "replicasets",
                                         rs["metadata"].value("name", "")));
    } catch (const kube::ApiError& e) {
      if (e.code != 404) throw;
    }
  }
}

void Takeover::remove_pods_the_controller_keeps(const WorkloadRef& ref, const json& object,
                                                const json& original) {
  // A ReplicaSet, and an OnDelete StatefulSet, replace no pod by themselves. A StatefulSet
  // waits for its updated pod to be Ready before going on, even once the template is back
  // (kubernetes#67250): an agent pod that never got ready (ImagePullBackOff) would block the
  // revert for good. Those pods go; the controller makes them again from the original.
  const bool replace_all =
      ref.kind == WorkloadKind::replicaset || kube::updates_on_delete(ref.kind, object);
  if (!replace_all && ref.kind != WorkloadKind::statefulset) return;
  auto pods = list_pods(ref, object)["items"];
  for (const auto& pod : pods) {
    if (runs_template(pod, original)) continue;
    if (!replace_all && kube::pod_ready(pod)) continue;
    client_.remove(kube::resource_path("v1", ref.ns, "pods", pod["metadata"].value("name", "")));
  }
}

bool Takeover::restore(const WorkloadRef& ref, std::chrono::seconds timeout, bool force) {
  json object;
  try {
    object = client_.get(ref.path());
  } catch (const kube::ApiError& e) {
    if (e.code != 404) throw;
    progress_.step(ref.describe() + " no longer exists; nothing to restore");
    // A routed session's Deployment may be gone with its route still held (a crash between).
    if (ref.kind == WorkloadKind::deployment) prune_routes(ref.ns);
    return false;
  }
  if (created_by_session(object)) {
    remove_created_workload(ref, object, timeout);
    const auto& annotations = kube::field(object["metadata"], "annotations");
    if (auto service = kube::text_of(kube::field(annotations, kRouteServiceAnnotation));
        !service.empty()) {
      leave_route(ref.ns, service, kube::text_of(kube::field(annotations,
                                                             kCreatedBySessionAnnotation)));
    }
    return true;
  }
  auto original = original_template(ref, object);
  if (!original) return false;
  // What lpk installed (kAgentAnnotation); null for sessions older than that record.
  auto installed = json::parse(object["metadata"].value("annotations", json::object())
                                   .value(kAgentAnnotation, "null"),
                               nullptr, false);
  if (!force) refuse_changed(ref, object, installed);
  progress_.step("restoring " + ref.describe());
  if (ref.kind == WorkloadKind::pod) {
    recreate_pod(ref, object, *original, timeout);
  } else {
    for (int attempt = 0;; ++attempt) {
      try {
        client_.replace(ref.path(), restored_object(ref.kind, object, *original));
        break;
      } catch (const kube::ApiError& e) {
        // Someone (a controller updating status) wrote in between: read again and retry.
        if (e.code != 409 || attempt == 10) throw;
        object = client_.get(ref.path());
        if (!carries_original(object)) return false;
      }
    }
    remove_pods_the_controller_keeps(ref, object, *original);
  }
  remove_session_objects_of(ref, object);
  wait_rollout(ref, timeout,
               [&](const json& pods) {
                 return std::all_of(pods.begin(), pods.end(), [&](const json& pod) {
                   return runs_template(pod, *original) && kube::pod_ready(pod);
                 });
               },
               "restore of " + ref.describe());
  if (ref.kind == WorkloadKind::deployment && installed.is_object()) {
    remove_agent_replicasets(ref, object, installed);
  }
  return true;
}

std::vector<WorkloadRef> Takeover::changed_workloads(const std::string& ns) {
  std::vector<WorkloadRef> found;
  for (auto kind : {WorkloadKind::deployment, WorkloadKind::statefulset,
                    WorkloadKind::replicaset, WorkloadKind::pod}) {
    auto list = client_.list(kube::resource_path(group_version_of(kind), ns, resource_of(kind)));
    for (const auto& item : list.value("items", json::array())) {
      const auto& meta = item["metadata"];
      if (!carries_original(item) && !created_by_session(item)) continue;
      // The Deployment controller copies a Deployment's annotations to its ReplicaSets: those
      // are restored with their Deployment, never on their own.
      auto owner = kube::controller_of(item);
      if (kind == WorkloadKind::replicaset && owner && owner->kind == "Deployment") continue;
      found.push_back({kind, meta.value("namespace", ""), meta.value("name", "")});
    }
  }
  return found;
}

}  // namespace lpk::proxy
