// The Deployment status and its conditions (k/k pkg/controller/deployment/sync.go
// calculateStatus, progress.go syncRolloutStatus, util DeploymentComplete,
// DeploymentProgressing, DeploymentTimedOut).

#include "tools/kubesim/controllers/deployment_util.hpp"

namespace lpk::kubesim::deploy {

namespace {

int sum(const std::vector<json>& sets, const char* field) {
  int n = 0;
  for (const auto& rs : sets) {
    if (!rs.is_null()) n += status_int(rs, field);
  }
  return n;
}

std::string name_of(const json& obj) {
  return obj.is_null() ? "" : obj["metadata"].value("name", "");
}

// "ReplicaSet "x" <what>", or about the Deployment when there is no new set yet.
std::string progress_message(const json& d, const json& new_rs, const std::string& what) {
  if (new_rs.is_null()) return "Deployment \"" + name_of(d) + "\" " + what;
  return "ReplicaSet \"" + name_of(new_rs) + "\" " + what;
}

void promote_replica_failure(json& status, const std::vector<json>& all, const json& new_rs) {
  auto failure_of = [](const json& rs) -> const json* {
    return rs.is_null() ? nullptr : get_condition(status_of(rs),
                                                  "ReplicaFailure");
  };
  const json* failure = failure_of(new_rs);
  for (size_t i = 0; !failure && i < all.size(); ++i) failure = failure_of(all[i]);
  if (!failure) {
    remove_condition(status, "ReplicaFailure");
    return;
  }
  json c = *failure;
  c["lastUpdateTime"] = c.value("lastTransitionTime", "");
  set_condition(status, c);
}

}  // namespace

json calculate_status(const std::vector<json>& all, const json& new_rs, const json& d,
                      const std::string& now) {
  int available = sum(all, "availableReplicas");
  int total = 0;
  for (const auto& rs : all) total += rs.is_null() ? 0 : spec_replicas(rs);
  json old = d.value("status", json::object());
  json st = json::object();
  st["observedGeneration"] = d["metadata"].value("generation", 1);
  st["replicas"] = sum(all, "replicas");
  st["updatedReplicas"] = new_rs.is_null() ? 0 : status_int(new_rs, "replicas");
  st["readyReplicas"] = sum(all, "readyReplicas");
  st["availableReplicas"] = available;
  st["unavailableReplicas"] = std::max(0, total - available);
  for (const char* f : {"replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                        "unavailableReplicas"}) {
    if (st[f] == 0) st.erase(f);
  }
  if (old.contains("collisionCount")) st["collisionCount"] = old["collisionCount"];
  if (old.contains("conditions")) st["conditions"] = old["conditions"];
  if (available >= spec_replicas(d) - max_unavailable(d)) {
    set_condition(st, new_condition("Available", "True", "MinimumReplicasAvailable",
                                    "Deployment has minimum availability.", now));
  } else {
    set_condition(st, new_condition("Available", "False", "MinimumReplicasUnavailable",
                                    "Deployment does not have minimum availability.", now));
  }
  return st;
}

bool deployment_complete(const json& d, const json& status) {
  int want = spec_replicas(d);
  return status.value("updatedReplicas", 0) == want && status.value("replicas", 0) == want &&
         status.value("availableReplicas", 0) == want &&
         status.value("observedGeneration", int64_t{0}) >=
             d["metadata"].value("generation", int64_t{1});
}

bool deployment_progressing(const json& d, const json& status) {
  json old = d.value("status", json::object());
  auto f = [](const json& s, const char* k) { return s.value(k, 0); };
  int old_old = f(old, "replicas") - f(old, "updatedReplicas");
  int new_old = f(status, "replicas") - f(status, "updatedReplicas");
  return f(status, "updatedReplicas") > f(old, "updatedReplicas") || new_old < old_old ||
         f(status, "readyReplicas") > f(old, "readyReplicas") ||
         f(status, "availableReplicas") > f(old, "availableReplicas");
}

bool deployment_timed_out(const json& d, const json& status, SysTime now) {
  if (!has_progress_deadline(d)) return false;
  const json* c = get_condition(status, "Progressing");
  if (!c) return false;
  std::string reason = c->value("reason", "");
  if (reason == "NewReplicaSetAvailable") return false;
  if (reason == "ProgressDeadlineExceeded") return true;
  auto from = parse_rfc3339(c->value("lastUpdateTime", ""));
  if (!from) return false;
  auto deadline = std::chrono::seconds(d["spec"]["progressDeadlineSeconds"].get<int64_t>());
  return *from + deadline < now;
}

json rollout_status(const std::vector<json>& all, const json& new_rs, const json& d,
                    SysTime now) {
  std::string stamp = format_rfc3339(now);
  json st = calculate_status(all, new_rs, d, stamp);
  if (!has_progress_deadline(d)) remove_condition(st, "Progressing");
  const json* cur = get_condition(status_of(d), "Progressing");
  bool complete_before = st.value("replicas", 0) == st.value("updatedReplicas", 0) && cur &&
                         cur->value("reason", "") == "NewReplicaSetAvailable";
  if (has_progress_deadline(d) && !complete_before) {
    if (deployment_complete(d, st)) {
      set_condition(st, new_condition("Progressing", "True", "NewReplicaSetAvailable",
                                      progress_message(d, new_rs, "has successfully progressed."),
                                      stamp));
    } else if (deployment_progressing(d, st)) {
      // Progress moves lastUpdateTime even when the reason stays ReplicaSetUpdated.
      json c = new_condition("Progressing", "True", "ReplicaSetUpdated",
                             progress_message(d, new_rs, "is progressing."), stamp);
      if (cur && cur->value("status", "") == "True") {
        c["lastTransitionTime"] = (*cur)["lastTransitionTime"];
      }
      remove_condition(st, "Progressing");
      set_condition(st, c);
    } else if (deployment_timed_out(d, st, now)) {
      set_condition(st, new_condition("Progressing", "False", "ProgressDeadlineExceeded",
                                      progress_message(d, new_rs, "has timed out progressing."),
                                      stamp));
    }
  }
  promote_replica_failure(st, all, new_rs);
  return st;
}

}  // namespace lpk::kubesim::deploy
