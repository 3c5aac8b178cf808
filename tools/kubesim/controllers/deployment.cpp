// Deployment controller: one ReplicaSet per pod template (named <deployment>-<hash>),
// rolled by RollingUpdate (maxSurge/maxUnavailable) or Recreate, and the status fields
// `kubectl rollout status` reads.

#include <algorithm>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

namespace {

const ResourceType& kRs() { return resource_by_plural("replicasets"); }

int spec_replicas(const json& o) { return o["spec"].value("replicas", 1); }
int status_int(const json& o, const char* f) {
  return o.contains("status") ? o["status"].value(f, 0) : 0;
}

int revision_of(const json& rs) {
  auto a = rs["metadata"].value("annotations", json::object());
  return std::atoi(a.value("deployment.kubernetes.io/revision", "0").c_str());
}

json new_replicaset(const json& d, const std::string& hash, int revision) {
  json tmpl = d["spec"]["template"];
  tmpl["metadata"]["labels"]["pod-template-hash"] = hash;
  json sel = d["spec"]["selector"];
  sel["matchLabels"]["pod-template-hash"] = hash;
  std::string name = d["metadata"]["name"].get<std::string>() + "-" + hash;
  return {{"apiVersion", "apps/v1"},
          {"kind", "ReplicaSet"},
          {"metadata",
           {{"name", name},
            {"namespace", d["metadata"]["namespace"]},
            {"labels", tmpl["metadata"]["labels"]},
            {"annotations",
             {{"deployment.kubernetes.io/revision", std::to_string(revision)},
              {"deployment.kubernetes.io/desired-replicas", std::to_string(spec_replicas(d))}}},
            {"ownerReferences", {controller_ref(d)}}}},
          {"spec", {{"replicas", 0}, {"selector", sel}, {"template", tmpl}}}};
}

void scale(Rest& rest, json rs, int replicas) {
  if (spec_replicas(rs) == replicas) return;
  rs["spec"]["replicas"] = replicas;
  rs["metadata"].erase("resourceVersion");
  rest.update_object(kRs(), rs);
}

// Moves replicas from the old sets to the new one within the surge/unavailability budget.
void roll(Rest& rest, const json& d, json& fresh, std::vector<json>& old) {
  int want = spec_replicas(d);
  const json& strategy = d["spec"].value("strategy", json::object());
  int old_total = 0, old_ready = 0;
  for (const auto& rs : old) {
    old_total += spec_replicas(rs);
    old_ready += status_int(rs, "readyReplicas");
  }
  if (strategy.value("type", "RollingUpdate") == "Recreate") {
    for (auto& rs : old) scale(rest, rs, 0);
    int old_pods = 0;
    for (const auto& rs : old) old_pods += status_int(rs, "replicas");
    if (old_pods == 0) scale(rest, fresh, want);
    return;
  }
  json ru = strategy.value("rollingUpdate", json::object());
  int surge = int_or_percent(ru.value("maxSurge", json("25%")), want, true);
  int unavailable = int_or_percent(ru.value("maxUnavailable", json("25%")), want, false);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  int new_spec = spec_replicas(fresh);
  int up = std::min(want, std::max(new_spec, want + surge - old_total));
  if (old_total == 0) up = want;
  scale(rest, fresh, up);
  // Old pods may go while enough ready pods stay.
  int ready = old_ready + status_int(fresh, "readyReplicas");
  int can_remove = std::max(0, ready - (want - unavailable));
  // Old replicas that are not ready cost nothing to remove.
  for (auto& rs : old) {
    int r = spec_replicas(rs);
    int unready = std::max(0, r - status_int(rs, "readyReplicas"));
    int cut = std::min(r, unready + can_remove);
    can_remove -= std::max(0, cut - unready);
    if (status_int(fresh, "readyReplicas") >= want) cut = r;
    scale(rest, rs, r - cut);
  }
}

json condition(const char* type, const char* reason, const std::string& msg, bool ok) {
  std::string now = now_rfc3339();
  return {{"type", type},   {"status", ok ? "True" : "False"}, {"reason", reason},
          {"message", msg}, {"lastUpdateTime", now},           {"lastTransitionTime", now}};
}

void write_status(Rest& rest, json d, const json& fresh, const std::vector<json>& all) {
  int replicas = 0, ready = 0, available = 0;
  for (const auto& rs : all) {
    replicas += status_int(rs, "replicas");
    ready += status_int(rs, "readyReplicas");
    available += status_int(rs, "availableReplicas");
  }
  int updated = status_int(fresh, "replicas");
  int want = spec_replicas(d);
  bool complete = updated == want && replicas == want && available == want;
  std::string name = d["metadata"]["name"];
  json old_status = d.value("status", json::object());
  json conds = {
      condition("Available",
                available >= want - 1 && available > 0 ? "MinimumReplicasAvailable"
                                                       : "MinimumReplicasUnavailable",
                available > 0 || want == 0 ? "Deployment has minimum availability."
                                           : "Deployment does not have minimum availability.",
                available > 0 || want == 0),
      condition("Progressing", complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
                "ReplicaSet \"" + fresh["metadata"]["name"].get<std::string>() +
                    (complete ? "\" has successfully progressed." : "\" is progressing."),
                true)};
  // Keep transition times stable when a condition did not change.
  for (auto& c : conds) {
    for (const auto& o : old_status.value("conditions", json::array())) {
      if (o["type"] == c["type"] && o["status"] == c["status"] && o["reason"] == c["reason"]) c = o;
    }
  }
  json st = {{"observedGeneration", d["metadata"]["generation"]},
             {"replicas", replicas},
             {"updatedReplicas", updated},
             {"readyReplicas", ready},
             {"availableReplicas", available},
             {"conditions", conds}};
  if (replicas - available > 0) st["unavailableReplicas"] = replicas - available;
  for (const char* zero_omitted :
       {"replicas", "updatedReplicas", "readyReplicas", "availableReplicas"}) {
    if (st[zero_omitted] == 0) st.erase(zero_omitted);
  }
  if (st == old_status) return;
  d["status"] = st;
  d["metadata"].erase("resourceVersion");
  rest.update_object(resource_by_plural("deployments"), d, true);
}

void reconcile_one(Rest& rest, const json& d) {
  std::string hash = template_hash(d["spec"]["template"]);
  std::vector<json> sets = owned(rest, "replicasets", d);
  json fresh;
  std::vector<json> old;
  int max_rev = 0;
  for (auto& rs : sets) {
    max_rev = std::max(max_rev, revision_of(rs));
    auto labels = rs["metadata"].value("labels", json::object());
    if (labels.value("pod-template-hash", "") == hash)
      fresh = rs;
    else
      old.push_back(rs);
  }
  if (fresh.is_null()) {
    fresh = rest.create_object(kRs(), new_replicaset(d, hash, max_rev + 1));
  } else if (revision_of(fresh) < max_rev) {
    // A rollback to an earlier template makes its set the newest revision again.
    fresh["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
        std::to_string(max_rev + 1);
    fresh["metadata"].erase("resourceVersion");
    fresh = rest.update_object(kRs(), fresh);
  }
  roll(rest, d, fresh, old);
  // Re-read: scaling changed the sets.
  sets = owned(rest, "replicasets", d);
  for (const auto& rs : sets) {
    if (rs["metadata"]["name"] == fresh["metadata"]["name"]) fresh = rs;
  }
  write_status(rest, d, fresh, sets);
}

}  // namespace

void reconcile_deployments(Rest& rest) {
  for (const auto& d : rest.store().list("deployments")) {
    if (!terminating(d)) reconcile_one(rest, d);
  }
}

}  // namespace lpk::kubesim
