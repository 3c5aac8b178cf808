// The Deployment controller's moves between ReplicaSets (k/k pkg/controller/deployment
// rolling.go, recreate.go, and sync.go's scale, sync, cleanupDeployment, isScalingEvent,
// checkPausedConditions).

#include <algorithm>

#include "tools/kubesim/controllers/deployment_sync.hpp"
#include "tools/kubesim/controllers/deployment_util.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim::deploy {

std::vector<json> active_sets(const std::vector<json>& sets) {
  std::vector<json> out;
  for (const auto& rs : sets) {
    if (!rs.is_null() && spec_replicas(rs) > 0) out.push_back(rs);
  }
  return out;
}

std::vector<json> with(std::vector<json> sets, const json& rs) {
  if (!rs.is_null()) sets.push_back(rs);
  return sets;
}

void DeploymentSync::rollout_rolling() {
  auto [fresh, old] = all_sets(true);
  if (reconcile_new(with(old, fresh), fresh)) return sync_rollout_status(fresh, old);
  if (reconcile_old(with(old, fresh), active_sets(old), fresh)) {
    return sync_rollout_status(fresh, all_sets(false).old);
  }
  if (deployment_complete(d_, d_.value("status", json::object()))) cleanup(old);
  sync_rollout_status(fresh, old);
}

bool DeploymentSync::reconcile_new(const std::vector<json>& all, json& fresh) {
  int want = spec_replicas(d_);
  if (spec_replicas(fresh) == want) return false;
  if (spec_replicas(fresh) > want) return scale_set_with_event(fresh, want);
  return scale_set_with_event(fresh, new_rs_new_replicas(d_, all, fresh));
}

bool DeploymentSync::reconcile_old(const std::vector<json>& all, std::vector<json> old,
                                   const json& fresh) {
  int old_count = 0, all_count = 0;
  for (const auto& rs : old) old_count += spec_replicas(rs);
  if (old_count == 0) return false;
  for (const auto& rs : all) all_count += spec_replicas(rs);
  int min_available = spec_replicas(d_) - max_unavailable(d_);
  int new_unavailable = spec_replicas(fresh) - status_int(fresh, "availableReplicas");
  int max_scaled_down = all_count - min_available - new_unavailable;
  if (max_scaled_down <= 0) return false;
  // Unhealthy old replicas first: removing them costs no availability.
  int cleaned = cleanup_unhealthy(old, max_scaled_down);
  int scaled = scale_down_old(with(old, fresh), old);
  return cleaned + scaled > 0;
}

int DeploymentSync::cleanup_unhealthy(std::vector<json>& old, int max_cleanup) {
  sort_by_creation(old);
  int total = 0;
  for (auto& rs : old) {
    if (total >= max_cleanup) break;
    int replicas = spec_replicas(rs), available = status_int(rs, "availableReplicas");
    if (replicas == 0 || replicas == available) continue;
    int down = std::min(max_cleanup - total, replicas - available);
    scale_set_with_event(rs, replicas - down);
    total += down;
  }
  return total;
}

int DeploymentSync::scale_down_old(const std::vector<json>& all, std::vector<json>& old) {
  int min_available = spec_replicas(d_) - max_unavailable(d_);
  int available = 0;
  for (const auto& rs : all) available += status_int(rs, "availableReplicas");
  if (available <= min_available) return 0;
  sort_by_creation(old);
  int total = 0, budget = available - min_available;
  for (auto& rs : old) {
    if (total >= budget) break;
    if (spec_replicas(rs) == 0) continue;
    int down = std::min(spec_replicas(rs), budget - total);
    scale_set_with_event(rs, spec_replicas(rs) - down);
    total += down;
  }
  return total;
}

void DeploymentSync::rollout_recreate() {
  auto [fresh, old] = all_sets(false);
  bool scaled = false;
  for (auto& rs : active_sets(old)) scaled = scale_set_with_event(rs, 0) || scaled;
  if (scaled || old_pods_running(old)) {
    return sync_rollout_status(fresh, all_sets(false).old);
  }
  if (fresh.is_null()) {
    auto created = all_sets(true);
    fresh = created.fresh;
    old = created.old;
  }
  scale_set_with_event(fresh, spec_replicas(d_));
  if (deployment_complete(d_, d_.value("status", json::object()))) cleanup(old);
  sync_rollout_status(fresh, old);
}

// Recreate waits until no pod of an old set is left but terminal ones.
bool DeploymentSync::old_pods_running(const std::vector<json>& old) {
  for (const auto& rs : old) {
    if (status_int(rs, "replicas") > 0) return true;
  }
  for (const auto& pod : rest_.store().list("pods", d_["metadata"]["namespace"])) {
    for (const auto& rs : old) {
      if (owned_by(pod, uid_of(rs)) && !pod_terminal(pod)) return true;
    }
  }
  return false;
}

void DeploymentSync::sync() {
  auto [fresh, old] = all_sets(false);
  scale(fresh, old);
  auto after = all_sets(false);
  if (d_["spec"].value("paused", false)) cleanup(after.old);
  json st = calculate_status(with(after.old, after.fresh), after.fresh, d_, now_rfc3339());
  if (st == d_.value("status", json::object())) return;
  d_["status"] = st;
  write_deployment();
}

void DeploymentSync::scale(const json& fresh, const std::vector<json>& old) {
  int want = spec_replicas(d_);
  json one = find_active_or_latest(fresh, old);
  if (!one.is_null()) {
    if (spec_replicas(one) != want) scale_set_with_event(one, want);
    return;
  }
  if (is_saturated(d_, fresh)) {
    for (auto& rs : active_sets(old)) scale_set_with_event(rs, 0);
    return;
  }
  if (is_rolling_update(d_)) scale_proportionally(active_sets(with(old, fresh)));
}

// Spreads a change of spec.replicas over the active sets in proportion to their size:
// larger sets first, newer first when growing and older first when shrinking.
void DeploymentSync::scale_proportionally(std::vector<json> active) {
  int total = 0;
  for (const auto& rs : active) total += spec_replicas(rs);
  int allowed = spec_replicas(d_) > 0 ? spec_replicas(d_) + max_surge(d_) : 0;
  int to_add = allowed - total;
  sort_by_creation(active);
  if (to_add > 0) std::reverse(active.begin(), active.end());
  std::stable_sort(active.begin(), active.end(), [](const json& a, const json& b) {
    return spec_replicas(a) > spec_replicas(b);
  });
  std::string op = to_add > 0 ? "up" : to_add < 0 ? "down" : "";
  std::vector<int> sizes;
  int added = 0;
  for (const auto& rs : active) {
    int p = to_add != 0 ? get_proportion(rs, d_, to_add, added) : 0;
    sizes.push_back(spec_replicas(rs) + p);
    added += p;
  }
  for (size_t i = 0; i < active.size(); ++i) {
    if (i == 0 && to_add != 0) sizes[0] = std::max(0, sizes[0] + to_add - added);
    scale_set(active[i], sizes[i], op);
  }
}

void DeploymentSync::cleanup(std::vector<json> old) {
  const json& limit = d_["spec"].value("revisionHistoryLimit", json());
  if (!limit.is_number_integer() || limit.get<int64_t>() == 2147483647) return;
  std::vector<json> alive;
  for (const auto& rs : old) {
    if (!terminating(rs)) alive.push_back(rs);
  }
  int diff = int(alive.size()) - limit.get<int>();
  if (diff <= 0) return;
  sort_by_creation(alive);
  std::stable_sort(alive.begin(), alive.end(),
                   [](const json& a, const json& b) { return revision_of(a) < revision_of(b); });
  for (int i = 0; i < diff; ++i) {
    const json& rs = alive[i];
    bool busy = status_int(rs, "replicas") != 0 || spec_replicas(rs) != 0 ||
                rs["metadata"].value("generation", 1) > status_int(rs, "observedGeneration");
    if (busy) continue;
    rest_.remove({&kRs(), rs["metadata"]["namespace"], name_of(rs), ""}, false);
  }
}

bool DeploymentSync::is_scaling_event() {
  auto [fresh, old] = all_sets(false);
  for (const auto& rs : active_sets(with(old, fresh))) {
    const json& ann = rs["metadata"].value("annotations", json::object());
    std::string desired = ann.value(kDesiredReplicas, "");
    if (!desired.empty() && std::atoi(desired.c_str()) != spec_replicas(d_)) return true;
  }
  return false;
}

void DeploymentSync::check_paused_conditions() {
  if (!has_progress_deadline(d_)) return;
  const json* cond = get_condition(status_of(d_), "Progressing");
  std::string reason = cond ? cond->value("reason", "") : "";
  if (reason == "ProgressDeadlineExceeded") return;
  bool paused = d_["spec"].value("paused", false);
  bool marked = reason == "DeploymentPaused";
  if (paused == marked) return;
  set_condition(d_["status"],
                new_condition("Progressing", "Unknown",
                              paused ? "DeploymentPaused" : "DeploymentResumed",
                              paused ? "Deployment is paused" : "Deployment is resumed",
                              now_rfc3339()));
  write_deployment();
}

}  // namespace lpk::kubesim::deploy
