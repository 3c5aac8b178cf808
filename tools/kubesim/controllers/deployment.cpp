// Deployment controller, after k/k pkg/controller/deployment (deployment_controller.go
// syncDeployment, sync.go, rolling.go, recreate.go): a ReplicaSet per pod template named
// <deployment>-<hash>, revisions and annotations synced to the current one, RollingUpdate
// within maxSurge/maxUnavailable, Recreate, proportional scaling when spec.replicas changes
// mid-rollout, paused deployments, history cleanup, ScalingReplicaSet events, and the
// status with its Available/Progressing conditions (ProgressDeadlineExceeded included).

#include <algorithm>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/controllers/deployment_sync.hpp"
#include "tools/kubesim/controllers/deployment_util.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim::deploy {

namespace {
const EventSource& kSource = kDeploymentSource;
}  // namespace

void DeploymentSync::remember(const json& rs) {
  for (auto& s : sets_) {
    if (uid_of(s) == uid_of(rs)) s = rs;
  }
}

// UpdateStatus of the deployment controller: the revision annotation and the status.
void DeploymentSync::write_deployment() {
  auto cur = rest_.store().get("deployments", d_["metadata"]["namespace"], name_of(d_));
  if (!cur) return;
  json annotations = d_["metadata"].value("annotations", json::object());
  if ((*cur)["metadata"].value("annotations", json::object()) != annotations) {
    (*cur)["metadata"]["annotations"] = annotations;
    (*cur)["metadata"].erase("resourceVersion");
    *cur = rest_.update_object(kDeploy(), *cur);
  }
  if (cur->value("status", json::object()) != d_.value("status", json::object())) {
    (*cur)["status"] = d_["status"];
    (*cur)["metadata"].erase("resourceVersion");
    *cur = rest_.update_object(kDeploy(), *cur, true);
  }
  d_ = *cur;
}

DeploymentSync::Sets DeploymentSync::all_sets(bool create) {
  int idx = find_new_replicaset(d_, sets_);
  Sets s;
  for (int i = 0; i < int(sets_.size()); ++i) {
    if (i != idx) s.old.push_back(sets_[i]);
  }
  s.fresh = new_replicaset(s.old, create);
  return s;
}

// getNewReplicaSet: syncs the existing new set's annotations, or creates it.
json DeploymentSync::new_replicaset(const std::vector<json>& old, bool create) {
  int64_t revision = max_revision(old) + 1;
  int idx = find_new_replicaset(d_, sets_);
  if (idx < 0) return create ? create_replicaset(old, revision) : json();
  json rs = sets_[idx];
  json copy = rs;
  bool changed = set_new_rs_annotations(d_, copy, revision, true);
  int min_ready = d_["spec"].value("minReadySeconds", 0);
  if (changed || copy["spec"].value("minReadySeconds", 0) != min_ready) {
    if (min_ready != 0) copy["spec"]["minReadySeconds"] = min_ready;
    else copy["spec"].erase("minReadySeconds");
    copy["metadata"].erase("resourceVersion");
    rs = rest_.update_object(kRs(), copy);
    remember(rs);
    return rs;
  }
  bool update = false;
  std::string rev = copy["metadata"]["annotations"].value(kRevision, "");
  if (d_["metadata"].value("annotations", json::object()).value(kRevision, "") != rev) {
    d_["metadata"]["annotations"][kRevision] = rev;
    update = true;
  }
  if (has_progress_deadline(d_) &&
      !get_condition(status_of(d_), "Progressing")) {
    set_condition(d_["status"], new_condition("Progressing", "True", "FoundNewReplicaSet",
                                              "Found new replica set \"" + name_of(rs) + "\"",
                                              now_rfc3339()));
    update = true;
  }
  if (update) write_deployment();
  return rs;
}

json DeploymentSync::create_replicaset(const std::vector<json>& old, int64_t revision) {
  int collisions = d_.value("status", json::object()).value("collisionCount", 0);
  json tmpl = d_["spec"]["template"];
  std::string hash = template_hash(tmpl, collisions);
  tmpl["metadata"]["labels"][kHashLabel] = hash;
  json sel = d_["spec"]["selector"];
  sel["matchLabels"][kHashLabel] = hash;
  json spec = {{"replicas", 0}, {"selector", sel}, {"template", tmpl}};
  if (int m = d_["spec"].value("minReadySeconds", 0)) spec["minReadySeconds"] = m;
  json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata",
              {{"name", name_of(d_) + "-" + hash},
               {"namespace", d_["metadata"]["namespace"]},
               {"labels", tmpl["metadata"]["labels"]},
               {"ownerReferences", {controller_ref(d_)}}}},
             {"spec", spec}};
  int count = new_rs_new_replicas(d_, with(old, rs), rs);
  rs["spec"]["replicas"] = count;
  set_new_rs_annotations(d_, rs, revision, false);
  bool existed = false;
  try {
    rs = rest_.create_object(kRs(), rs);
    sets_.push_back(rs);
  } catch (const ApiError& e) {
    auto cur = rest_.store().get("replicasets", d_["metadata"]["namespace"], name_of(rs));
    if (e.code() == 409 && cur && owned_by(*cur, uid_of(d_)) &&
        equal_ignore_hash((*cur)["spec"]["template"], d_["spec"]["template"])) {
      rs = *cur;
      existed = true;
    } else if (e.code() == 409 && cur) {
      d_["status"]["collisionCount"] = collisions + 1;  // a hash collision: another name
      write_deployment();
      throw;
    } else {
      std::string msg = "Failed to create new replica set \"" + name_of(rs) + "\": " + e.what();
      if (has_progress_deadline(d_)) {
        set_condition(d_["status"], new_condition("Progressing", "False", "ReplicaSetCreateError",
                                                  msg, now_rfc3339()));
        write_deployment();
      }
      events_.record(d_, "Warning", "ReplicaSetCreateError", msg, kSource);
      throw;
    }
  }
  if (!existed && count > 0) {
    events_.record(d_, "Normal", "ScalingReplicaSet",
                   "Scaled up replica set " + name_of(rs) + " to " + std::to_string(count),
                   kSource);
  }
  d_["metadata"]["annotations"][kRevision] = std::to_string(revision);
  if (!existed && has_progress_deadline(d_)) {
    set_condition(d_["status"], new_condition("Progressing", "True", "NewReplicaSetCreated",
                                              "Created new replica set \"" + name_of(rs) + "\"",
                                              now_rfc3339()));
  }
  write_deployment();
  return rs;
}

// scaleReplicaSet: the size and the desired-/max-replicas annotations in one update.
bool DeploymentSync::scale_set(json& rs, int size, const std::string& op) {
  int want = spec_replicas(d_), max = want + max_surge(d_);
  int from = spec_replicas(rs);
  bool resize = from != size;
  if (!resize && !replicas_annotations_need_update(rs, want, max)) return false;
  json copy = rs;
  copy["spec"]["replicas"] = size;
  set_replicas_annotations(copy, want, max);
  copy["metadata"].erase("resourceVersion");
  rs = rest_.update_object(kRs(), copy);
  remember(rs);
  if (resize) {
    events_.record(d_, "Normal", "ScalingReplicaSet",
                   "Scaled " + op + " replica set " + name_of(rs) + " to " +
                       std::to_string(size) + " from " + std::to_string(from),
                   kSource);
  }
  return resize;
}

bool DeploymentSync::scale_set_with_event(json& rs, int size) {
  if (spec_replicas(rs) == size) return false;
  return scale_set(rs, size, spec_replicas(rs) < size ? "up" : "down");
}

void DeploymentSync::sync_rollout_status(const json& fresh, const std::vector<json>& old) {
  json st = rollout_status(with(old, fresh), fresh, d_, std::chrono::system_clock::now());
  if (st == d_.value("status", json::object())) return;
  d_["status"] = st;
  write_deployment();
}

void DeploymentSync::run() {
  if (d_["spec"].value("selector", json::object()).empty()) {
    events_.record(d_, "Warning", "SelectingAll",
                   "This deployment is selecting all pods. A non-empty selector is required.",
                   kSource);
    return;
  }
  check_paused_conditions();
  if (d_["spec"].value("paused", false) || is_scaling_event()) return sync();
  if (is_rolling_update(d_)) return rollout_rolling();
  rollout_recreate();
}

}  // namespace lpk::kubesim::deploy

namespace lpk::kubesim {

void reconcile_deployments(Rest& rest, EventRecorder& events) {
  each_object(rest.store().list("deployments"), [&](const json& d) {
    if (!terminating(d)) deploy::DeploymentSync(rest, events, d).run();
  });
}

}  // namespace lpk::kubesim
