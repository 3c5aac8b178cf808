// ReplicaSet controller, after k/k pkg/controller/replicaset (syncReplicaSet,
// manageReplicas, calculateStatus): spec.replicas active pods (not terminal, not being
// deleted; Failed and Succeeded pods stay listed but are replaced), created from the
// template with generateName <rs>-, the surplus removed in the controller's rank order;
// SuccessfulCreate/FailedCreate/SuccessfulDelete events, the ReplicaFailure condition, and
// replicas, fullyLabeledReplicas, readyReplicas and availableReplicas.

#include <algorithm>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/controllers/deployment_util.hpp"
#include "tools/kubesim/selectors.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

namespace {

const EventSource kSource{"replicaset-controller", ""};

int phase_ordinal(const json& pod) {
  std::string phase = pod_phase(pod);
  if (phase == "Pending") return 0;
  if (phase == "Unknown") return 1;
  return 2;
}

int max_restarts(const json& pod) {
  int n = 0;
  for (const auto& c : pod.value("status", json::object()).value("containerStatuses",
                                                                   json::array())) {
    n = std::max(n, c.value("restartCount", 0));
  }
  return n;
}

std::string ready_since(const json& pod) {
  for (const auto& c :
       pod.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") return c.value("lastTransitionTime", "");
  }
  return "";
}

double deletion_cost(const json& pod) {
  auto ann = pod["metadata"].value("annotations", json::object());
  return std::atof(ann.value("controller.kubernetes.io/pod-deletion-cost", "0").c_str());
}

// ActivePodsWithRanks.Less: which pod goes first when there are too many.
bool delete_before(const json& a, const json& b) {
  bool na = a["spec"].value("nodeName", "").empty(), nb = b["spec"].value("nodeName", "").empty();
  if (na != nb) return na;
  if (phase_ordinal(a) != phase_ordinal(b)) return phase_ordinal(a) < phase_ordinal(b);
  if (pod_ready(a) != pod_ready(b)) return !pod_ready(a);
  if (deletion_cost(a) != deletion_cost(b)) return deletion_cost(a) < deletion_cost(b);
  if (pod_ready(a) && pod_ready(b) && ready_since(a) != ready_since(b)) {
    return ready_since(a) > ready_since(b);  // the more recently ready first
  }
  if (max_restarts(a) != max_restarts(b)) return max_restarts(a) > max_restarts(b);
  return a["metadata"].value("creationTimestamp", "") > b["metadata"].value("creationTimestamp", "");
}

// Creates missing pods; stops at the first refusal, as slowStartBatch stops after a batch
// that had errors. Returns the error, "" when every pod was created.
std::string create_pods(Rest& rest, EventRecorder& events, const json& rs, int count) {
  const auto& pods_t = resource_by_plural("pods");
  for (int i = 0; i < count; ++i) {
    json pod = pod_from_template(rs, rs["spec"]["template"], rs["metadata"]["namespace"]);
    pod["metadata"]["generateName"] = rs["metadata"]["name"].get<std::string>() + "-";
    try {
      json made = rest.create_object(pods_t, pod);
      events.record(rs, "Normal", "SuccessfulCreate",
                    "Created pod: " + made["metadata"]["name"].get<std::string>(), kSource);
    } catch (const ApiError& e) {
      events.record(rs, "Warning", "FailedCreate", std::string("Error creating: ") + e.what(),
                    kSource);
      return e.what();
    }
  }
  return "";
}

std::string delete_pods(Rest& rest, EventRecorder& events, const json& rs, std::vector<json> pods,
                        int count) {
  std::stable_sort(pods.begin(), pods.end(), delete_before);
  for (int i = 0; i < count && i < int(pods.size()); ++i) {
    std::string name = pods[i]["metadata"]["name"];
    try {
      rest.remove({&resource_by_plural("pods"), rs["metadata"]["namespace"], name, ""}, false);
      events.record(rs, "Normal", "SuccessfulDelete", "Deleted pod: " + name, kSource);
    } catch (const ApiError& e) {
      if (e.code() == 404) continue;
      events.record(rs, "Warning", "FailedDelete", "Error deleting: " + std::string(e.what()),
                    kSource);
      return e.what();
    }
  }
  return "";
}

json calculate_status(const json& rs, const std::vector<json>& active, const std::string& error,
                      int diff) {
  auto labels = LabelSelector::from_map(
      rs["spec"]["template"].value("metadata", json::object()).value("labels", json::object()));
  int min_ready = rs["spec"].value("minReadySeconds", 0);
  auto now = std::chrono::system_clock::now();
  int fully = 0, ready = 0, available = 0;
  for (const auto& p : active) {
    if (labels.matches(p["metadata"].value("labels", json::object()))) ++fully;
    if (pod_ready(p)) ++ready;
    if (pod_available(p, min_ready, now)) ++available;
  }
  json st = {{"replicas", int(active.size())},
             {"fullyLabeledReplicas", fully},
             {"readyReplicas", ready},
             {"availableReplicas", available},
             {"observedGeneration", rs["metadata"]["generation"]}};
  for (const char* f : {"fullyLabeledReplicas", "readyReplicas", "availableReplicas"}) {
    if (st[f] == 0) st.erase(f);
  }
  json old = rs.value("status", json::object());
  if (old.contains("conditions")) st["conditions"] = old["conditions"];
  bool failing = deploy::get_condition(old, "ReplicaFailure") != nullptr;
  if (!error.empty() && !failing) {
    std::string now_s = now_rfc3339();
    st["conditions"].push_back({{"type", "ReplicaFailure"},
                                {"status", "True"},
                                {"lastTransitionTime", now_s},
                                {"reason", diff < 0 ? "FailedCreate" : "FailedDelete"},
                                {"message", error}});
  } else if (error.empty() && failing) {
    deploy::remove_condition(st, "ReplicaFailure");
  }
  return st;
}

void reconcile_one(Rest& rest, EventRecorder& events, const json& rs) {
  std::vector<json> active;
  for (auto& p : owned(rest, "pods", rs)) {
    if (pod_active(p)) active.push_back(std::move(p));
  }
  int diff = int(active.size()) - spec_replicas(rs);
  std::string error;
  if (diff < 0) error = create_pods(rest, events, rs, -diff);
  if (diff > 0) error = delete_pods(rest, events, rs, active, diff);
  if (diff != 0) {
    active.clear();
    for (auto& p : owned(rest, "pods", rs)) {
      if (pod_active(p)) active.push_back(std::move(p));
    }
  }
  json st = calculate_status(rs, active, error, diff);
  if (rs.value("status", json::object()) == st) return;
  json copy = rs;
  copy["status"] = st;
  copy["metadata"].erase("resourceVersion");
  rest.update_object(resource_by_plural("replicasets"), copy, true);
}

}  // namespace

void reconcile_replicasets(Rest& rest, EventRecorder& events) {
  each_object(rest.store().list("replicasets"), [&](const json& rs) {
    if (!terminating(rs)) reconcile_one(rest, events, rs);
  });
}

}  // namespace lpk::kubesim
