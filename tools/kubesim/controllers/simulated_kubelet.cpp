#include <set>
// The --no-runtime stand-in for a kubelet: binds every pod to the node, gives it an address
// from the pod CIDR and reports it Running and Ready without starting anything. It lets the
// API and the controllers be exercised by users without root; nothing listens on those IPs.
// Ready follows the pod's readinessGates as the kubelet's does (GeneratePodReadyCondition):
// a pod with a gate whose condition is not True in its status stays not ready, which is how
// tests make a pod that never gets ready. A pod that has ended (a kubelet eviction writes
// phase Failed, reason Evicted) is left as it is.

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/events.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

namespace {

std::string next_ip(Rest& rest) {
  std::set<std::string> used;
  for (const auto& p : rest.store().list("pods")) {
    if (p.contains("status")) used.insert(p["status"].value("podIP", ""));
  }
  const ClusterNetwork& network = rest.admit_options().network;
  for (uint32_t i = 2; i < 65000; ++i) {
    auto ip = network.pod_ip(i);
    if (ip && !used.count(*ip)) return *ip;
  }
  return "";
}

// Every readiness gate's condition is True (status.GeneratePodReadyCondition).
bool gates_pass(const json& pod) {
  for (const auto& gate : pod["spec"].value("readinessGates", json::array())) {
    std::string type = gate.value("conditionType", "");
    bool ok = false;
    for (const auto& c : pod.value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") == type) ok = c.value("status", "") == "True";
    }
    if (!ok) return false;
  }
  return true;
}

// Only Ready: the containers are ready (ContainersReady) whatever the gates say.
void set_ready(json& status, bool ready, const std::string& now) {
  std::string r = ready ? "True" : "False";
  for (auto& c : status["conditions"]) {
    if (c.value("type", "") == "Ready" && c.value("status", "") != r) {
      c["status"] = r;
      c["lastTransitionTime"] = now;
    }
  }
}

// A running pod's Ready condition when a readiness gate's condition changed.
void sync_readiness(Rest& rest, json pod) {
  if (pod_phase(pod) != "Running" || pod["spec"].value("readinessGates", json::array()).empty()) {
    return;
  }
  bool ready = gates_pass(pod);
  if (pod_ready(pod) == ready) return;
  set_ready(pod["status"], ready, now_rfc3339());
  pod["metadata"].erase("resourceVersion");
  rest.update_object(resource_by_plural("pods"), pod, true);
}

}  // namespace

json running_pod_status(const json& pod, const std::string& ip, const std::string& host_ip,
                        bool ready, const std::string& started) {
  json statuses = json::array();
  for (const auto& c : pod["spec"].value("containers", json::array())) {
    statuses.push_back({{"name", c["name"]},
                        {"image", c["image"]},
                        {"imageID", ""},
                        {"containerID", "kubesim://" + pod["metadata"]["name"].get<std::string>() +
                                            "-" + c["name"].get<std::string>()},
                        {"ready", ready},
                        {"started", true},
                        {"restartCount", 0},
                        {"state", {{"running", {{"startedAt", started}}}}}});
  }
  std::string r = ready ? "True" : "False";
  json conds = json::array();
  for (const auto& [type, status] :
       {std::pair<const char*, std::string>{"PodReadyToStartContainers", "True"},
        {"Initialized", "True"},
        {"Ready", r},
        {"ContainersReady", r},
        {"PodScheduled", "True"}}) {
    conds.push_back({{"type", type},
                     {"status", status},
                     {"lastProbeTime", nullptr},
                     {"lastTransitionTime", started}});
  }
  return {{"phase", "Running"},
          {"conditions", conds},
          {"hostIP", host_ip},
          {"hostIPs", {{{"ip", host_ip}}}},
          {"podIP", ip},
          {"podIPs", {{{"ip", ip}}}},
          {"startTime", started},
          {"containerStatuses", statuses},
          {"qosClass", "BestEffort"}};
}

void reconcile_simulated_pods(Rest& rest, EventRecorder& events) {
  const auto& t = resource_by_plural("pods");
  for (auto pod : rest.store().list("pods")) {
    if (terminating(pod)) {
      rest.store().remove("pods", pod["metadata"]["namespace"], pod["metadata"]["name"]);
      continue;
    }
    // As the runtime kubelet: pods not bound yet and pods created bound to this node (a bare
    // pod recreated from its own spec), each once; a Running pod has been done.
    if (pod.value("status", json::object()).value("phase", "Pending") != "Pending") {
      sync_readiness(rest, pod);
      continue;
    }
    const std::string node = pod["spec"].value("nodeName", "");
    if (!node.empty() && node != "kubesim-node") continue;
    pod["spec"]["nodeName"] = "kubesim-node";
    pod["metadata"].erase("resourceVersion");
    pod = rest.update_object(t, pod);
    if (node.empty()) {
      events.record(pod, "Normal", "Scheduled",
                    "Successfully assigned " + pod["metadata"].value("namespace", "") + "/" +
                        pod["metadata"].value("name", "") + " to kubesim-node",
                    {"default-scheduler", ""});
    }
    std::string now = now_rfc3339();
    pod["status"] = running_pod_status(pod, next_ip(rest),
                                       rest.admit_options().network.node_ip(), true, now);
    set_ready(pod["status"], gates_pass(pod), now);
    rest.update_object(t, pod, true);
  }
}

}  // namespace lpk::kubesim
