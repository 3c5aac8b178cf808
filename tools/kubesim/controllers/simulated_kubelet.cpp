#include <set>
// The --no-runtime stand-in for a kubelet: binds every pod to the node, gives it an address
// from the pod CIDR and reports it Running and Ready without starting anything. It lets the
// API and the controllers be exercised by users without root; nothing listens on those IPs.

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
  for (int i = 2; i < 65000; ++i) {
    std::string ip = "10.244." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    if (i % 256 != 0 && i % 256 != 255 && !used.count(ip)) return ip;
  }
  return "";
}

}  // namespace

json running_pod_status(const json& pod, const std::string& ip, bool ready,
                        const std::string& started) {
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
          {"hostIP", "10.244.0.1"},
          {"hostIPs", {{{"ip", "10.244.0.1"}}}},
          {"podIP", ip},
          {"podIPs", {{{"ip", ip}}}},
          {"startTime", started},
          {"containerStatuses", statuses},
          {"qosClass", "BestEffort"}};
}

void reconcile_simulated_pods(Rest& rest) {
  const auto& t = resource_by_plural("pods");
  for (auto pod : rest.store().list("pods")) {
    if (terminating(pod)) {
      rest.store().remove("pods", pod["metadata"]["namespace"], pod["metadata"]["name"]);
      continue;
    }
    // As the runtime kubelet: pods not bound yet and pods created bound to this node (a bare
    // pod recreated from its own spec), each once; a Running pod has been done.
    if (pod.value("status", json::object()).value("phase", "Pending") != "Pending") continue;
    const std::string node = pod["spec"].value("nodeName", "");
    if (!node.empty() && node != "kubesim-node") continue;
    pod["spec"]["nodeName"] = "kubesim-node";
    pod["metadata"].erase("resourceVersion");
    pod = rest.update_object(t, pod);
    if (node.empty()) {
      record_event(rest, pod, "Normal", "Scheduled",
                   "Successfully assigned " + pod["metadata"].value("namespace", "") + "/" +
                       pod["metadata"].value("name", "") + " to kubesim-node",
                   {"default-scheduler", ""});
    }
    pod["status"] = running_pod_status(pod, next_ip(rest), true, now_rfc3339());
    rest.update_object(t, pod, true);
  }
}

}  // namespace lpk::kubesim
