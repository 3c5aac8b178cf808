// Endpoints and EndpointSlice controllers: for each Service with a selector, the pods it
// selects that have an IP and are not terminal (ShouldPodBeInEndpoints). Endpoints lists
// ready ones as addresses and others as notReadyAddresses, leaving out pods being deleted
// unless publishNotReadyAddresses; EndpointSlices keep those too, with their
// ready/serving/terminating conditions, as the EndpointSlice controller does.

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/network.hpp"
#include "tools/kubesim/selectors.hpp"

namespace lpk::kubesim {

namespace {

const char* kManagedBy = "endpoints.kubernetes.io/managed-by";

// The pod port a service port reaches: a number, or a named containerPort of the pod.
int resolve_port(const json& svc_port, const json& pod) {
  json tp = svc_port.value("targetPort", svc_port.value("port", json(0)));
  if (tp.is_number_integer()) return tp.get<int>();
  std::string name = tp.is_string() ? tp.get<std::string>() : "";
  for (const auto& c : pod["spec"].value("containers", json::array())) {
    for (const auto& p : c.value("ports", json::array())) {
      if (p.value("name", "") == name) return p.value("containerPort", 0);
    }
  }
  return 0;
}

json target_ref(const json& pod) {
  return {{"kind", "Pod"},
          {"name", pod["metadata"]["name"]},
          {"namespace", pod["metadata"]["namespace"]},
          {"uid", pod["metadata"]["uid"]}};
}

std::string hostname_for(const json& svc, const json& pod) {
  std::string sub = pod["spec"].value("subdomain", "");
  if (!sub.empty() && sub == svc["metadata"]["name"]) return pod["spec"].value("hostname", "");
  return "";
}

// The family of a service's endpoints: its first ipFamilies entry, as both controllers read
// it (for a service of two families the EndpointSlice controller makes one slice per family;
// kubesim's clusters have one).
std::string service_family(const json& svc) {
  const json families = svc["spec"].value("ipFamilies", json::array());
  if (families.is_array() && !families.empty() && families[0].is_string()) return families[0];
  std::string family = ClusterNetwork::family_of(svc["spec"].value("clusterIP", ""));
  return family.empty() ? "IPv4" : family;
}

// The pod's address of that family from status.podIPs (podIP when the list is missing); ""
// when it has none, and then the pod is no endpoint of the service.
std::string pod_ip_of(const json& pod, const std::string& family) {
  const json& st = pod["status"];
  json ips = st.value("podIPs", json::array());
  if (!ips.is_array() || ips.empty()) ips = json::array({{{"ip", st.value("podIP", "")}}});
  for (const auto& entry : ips) {
    std::string ip = entry.is_object() ? entry.value("ip", "") : "";
    if (ClusterNetwork::family_of(ip) == family) return ip;
  }
  return "";
}

void put(Rest& rest, const char* plural, json obj) {
  const auto& t = resource_by_plural(plural);
  auto cur = rest.store().get(plural, obj["metadata"]["namespace"], obj["metadata"]["name"]);
  if (!cur) {
    rest.create_object(t, obj);
    return;
  }
  json next = *cur;
  for (const char* f : {"subsets", "endpoints", "ports", "addressType"}) {
    if (obj.contains(f))
      next[f] = obj[f];
    else
      next.erase(f);
  }
  next["metadata"]["labels"] = obj["metadata"]["labels"];
  if (next != *cur) rest.update_object(t, next);
}

json endpoints_for(const json& svc, const std::vector<json>& pods) {
  json subsets = json::array();
  const std::string family = service_family(svc);
  bool all_ready = svc["spec"].value("publishNotReadyAddresses", false);
  // One subset per distinct resolved port list, as the endpoints controller repacks them.
  std::map<std::string, json> by_ports;
  for (const auto& pod : pods) {
    const std::string ip = pod_ip_of(pod, family);
    if (ip.empty() || (terminating(pod) && !all_ready)) continue;
    json ports = json::array();
    for (const auto& sp : svc["spec"].value("ports", json::array())) {
      json p = {{"port", resolve_port(sp, pod)}, {"protocol", sp.value("protocol", "TCP")}};
      if (sp.contains("name")) p["name"] = sp["name"];
      ports.push_back(p);
    }
    json& subset = by_ports[ports.dump()];
    if (subset.is_null()) subset = {{"ports", ports}};
    json addr = {{"ip", ip}, {"targetRef", target_ref(pod)}};
    if (pod["spec"].contains("nodeName")) addr["nodeName"] = pod["spec"]["nodeName"];
    std::string host = hostname_for(svc, pod);
    if (!host.empty()) addr["hostname"] = host;
    subset[all_ready || pod_ready(pod) ? "addresses" : "notReadyAddresses"].push_back(addr);
  }
  for (auto& [k, s] : by_ports) subsets.push_back(s);
  json labels = svc["metadata"].value("labels", json::object());
  labels[kManagedBy] = "endpoint-controller";
  return {{"apiVersion", "v1"},
          {"kind", "Endpoints"},
          {"metadata",
           {{"name", svc["metadata"]["name"]},
            {"namespace", svc["metadata"]["namespace"]},
            {"labels", labels}}},
          {"subsets", subsets}};
}

json slice_for(const json& svc, const std::vector<json>& pods) {
  std::string name = svc["metadata"]["name"];
  json endpoints = json::array();
  json ports = json::array();
  const std::string family = service_family(svc);
  for (const auto& pod : pods) {
    const std::string ip = pod_ip_of(pod, family);
    if (ip.empty()) continue;
    bool serving = pod_ready(pod), ending = terminating(pod);
    bool ready = svc["spec"].value("publishNotReadyAddresses", false) || (serving && !ending);
    json e = {{"addresses", {ip}},
              {"conditions", {{"ready", ready}, {"serving", serving}, {"terminating", ending}}},
              {"targetRef", target_ref(pod)}};
    if (pod["spec"].contains("nodeName")) e["nodeName"] = pod["spec"]["nodeName"];
    std::string host = hostname_for(svc, pod);
    if (!host.empty()) e["hostname"] = host;
    endpoints.push_back(e);
  }
  for (const auto& sp : svc["spec"].value("ports", json::array())) {
    json p = {{"name", sp.value("name", "")}, {"protocol", sp.value("protocol", "TCP")}};
    p["port"] = pods.empty() ? json(nullptr) : json(resolve_port(sp, pods.front()));
    ports.push_back(p);
  }
  json labels = svc["metadata"].value("labels", json::object());
  labels["kubernetes.io/service-name"] = name;
  labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io";
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", name + "-" + safe_encode(svc["metadata"].value("uid", "")).substr(0, 5)},
            {"namespace", svc["metadata"]["namespace"]},
            {"labels", labels},
            {"ownerReferences", {controller_ref(svc)}}}},
          {"addressType", family},
          {"endpoints", endpoints},
          {"ports", ports}};
}

void reconcile_one(Rest& rest, const json& svc) {
  const json& sel = svc["spec"].value("selector", json::object());
  if (!sel.is_object() || sel.empty()) return;  // selectorless: endpoints are the user's
  auto selector = LabelSelector::from_map(sel);
  std::vector<json> pods;
  for (auto& p : rest.store().list("pods", svc["metadata"]["namespace"])) {
    bool has_ip = p.contains("status") && !p["status"].value("podIP", "").empty();
    if (has_ip && !pod_terminal(p) &&
        selector.matches(p["metadata"].value("labels", json::object()))) {
      pods.push_back(std::move(p));
    }
  }
  put(rest, "endpoints", endpoints_for(svc, pods));
  put(rest, "endpointslices", slice_for(svc, pods));
}

}  // namespace

void reconcile_endpoints(Rest& rest, EventRecorder&) {
  for (const auto& svc : rest.store().list("services")) reconcile_one(rest, svc);
  // Endpoints we made for a service that is gone go with it.
  for (const auto& ep : rest.store().list("endpoints")) {
    auto labels = ep["metadata"].value("labels", json::object());
    std::string ns = ep["metadata"]["namespace"], name = ep["metadata"]["name"];
    if (labels.value(kManagedBy, "") == "endpoint-controller" &&
        !rest.store().get("services", ns, name)) {
      rest.remove({&resource_by_plural("endpoints"), ns, name, ""}, false);
    }
  }
}

}  // namespace lpk::kubesim
