// Endpoints and EndpointSlice controllers: for each Service with a selector, the pods it
// selects that have an IP and are not terminal (ShouldPodBeInEndpoints). Endpoints lists
// ready ones as addresses and others as notReadyAddresses, leaving out pods being deleted
// unless publishNotReadyAddresses; EndpointSlices keep those too, with their
// ready/serving/terminating conditions, as the EndpointSlice controller does. A named
// targetPort is resolved per pod from its containers' ports: pods that resolve a service's
// ports differently are in different subsets and slices, and a pod without that port name
// is no endpoint for that port. Both run on every store change (controllers.hpp), so a
// Service whose selector changed has its endpoints recomputed at once.

#include <map>
#include <optional>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/network.hpp"
#include "tools/kubesim/selectors.hpp"

namespace lpk::kubesim {

namespace {

const char* kManagedBy = "endpoints.kubernetes.io/managed-by";
const char* kServiceName = "kubernetes.io/service-name";
const char* kSliceManagedBy = "endpointslice.kubernetes.io/managed-by";
const char* kSliceController = "endpointslice-controller.k8s.io";

// The pod port a service port reaches (podutil.FindPort): a number as it is, or the
// containerPort of that name and the service port's protocol in the pod's containers or its
// sidecars (init containers that restart always); nullopt when the pod has none, and then
// the pod is no endpoint for that port.
std::optional<int> resolve_port(const json& svc_port, const json& pod) {
  json tp = svc_port.value("targetPort", svc_port.value("port", json(0)));
  if (tp.is_number_integer()) return tp.get<int>();
  if (!tp.is_string()) return std::nullopt;
  const std::string name = tp.get<std::string>(), protocol = svc_port.value("protocol", "TCP");
  const json& spec = pod["spec"];
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : spec.value(list, json::array())) {
      if (std::string(list) == "initContainers" && c.value("restartPolicy", "") != "Always") {
        continue;
      }
      for (const auto& p : c.value("ports", json::array())) {
        if (p.value("name", "") == name && p.value("protocol", "TCP") == protocol) {
          return p.value("containerPort", 0);
        }
      }
    }
  }
  return std::nullopt;
}

// The ports of a pod for a service, as both controllers list them: the service ports the
// pod has, each with its resolved number.
json endpoint_ports(const json& svc, const json& pod) {
  json ports = json::array();
  for (const auto& sp : svc["spec"].value("ports", json::array())) {
    auto port = resolve_port(sp, pod);
    if (!port) continue;
    json p = {
        {"name", sp.value("name", "")}, {"port", *port}, {"protocol", sp.value("protocol", "TCP")}};
    if (sp.contains("appProtocol")) p["appProtocol"] = sp["appProtocol"];
    ports.push_back(p);
  }
  return ports;
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

json address_for(const json& svc, const json& pod, const std::string& ip) {
  json addr = {{"ip", ip}, {"targetRef", target_ref(pod)}};
  if (pod["spec"].contains("nodeName")) addr["nodeName"] = pod["spec"]["nodeName"];
  std::string host = hostname_for(svc, pod);
  if (!host.empty()) addr["hostname"] = host;
  return addr;
}

// One subset per distinct list of resolved ports, as RepackSubsets groups addresses; a pod
// with none of the service's ports is left out (a headless service may have no ports).
json endpoints_for(const json& svc, const std::vector<json>& pods) {
  const std::string family = service_family(svc);
  const bool all_ready = svc["spec"].value("publishNotReadyAddresses", false);
  const bool portless = svc["spec"].value("ports", json::array()).empty();
  std::map<std::string, json> by_ports;
  for (const auto& pod : pods) {
    const std::string ip = pod_ip_of(pod, family);
    if (ip.empty() || (terminating(pod) && !all_ready)) continue;
    json ports = endpoint_ports(svc, pod);
    if (ports.empty() && !portless) continue;
    for (auto& p : ports) {
      if (p["name"] == "") p.erase("name");  // omitempty in v1.EndpointPort
    }
    json& subset = by_ports[ports.dump()];
    if (subset.is_null()) subset = ports.empty() ? json::object() : json{{"ports", ports}};
    const char* list = all_ready || pod_ready(pod) ? "addresses" : "notReadyAddresses";
    subset[list].push_back(address_for(svc, pod, ip));
  }
  json subsets = json::array();
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

json slice_endpoint(const json& svc, const json& pod, const std::string& ip) {
  bool serving = pod_ready(pod), ending = terminating(pod);
  bool ready = svc["spec"].value("publishNotReadyAddresses", false) || (serving && !ending);
  json e = {{"addresses", {ip}},
            {"conditions", {{"ready", ready}, {"serving", serving}, {"terminating", ending}}},
            {"targetRef", target_ref(pod)}};
  if (pod["spec"].contains("nodeName")) e["nodeName"] = pod["spec"]["nodeName"];
  std::string host = hostname_for(svc, pod);
  if (!host.empty()) e["hostname"] = host;
  return e;
}

// A slice of the service's endpoints that share one list of ports; its name comes from the
// service's uid and that list, so a slice keeps its name while its ports stay the same (the
// controller keeps reusing a slice whose ports match).
json slice_object(const json& svc, const std::string& family, json endpoints, json ports) {
  const std::string name = svc["metadata"]["name"];
  json labels = svc["metadata"].value("labels", json::object());
  labels[kServiceName] = name;
  labels[kSliceManagedBy] = kSliceController;
  std::string hash =
      template_hash({{"uid", svc["metadata"].value("uid", "")}, {"ports", ports.dump()}});
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", name + "-" + hash.substr(hash.size() > 5 ? hash.size() - 5 : 0)},
            {"namespace", svc["metadata"]["namespace"]},
            {"labels", labels},
            {"ownerReferences", {controller_ref(svc)}}}},
          {"addressType", family},
          {"endpoints", std::move(endpoints)},
          {"ports", std::move(ports)}};
}

// The EndpointSlice reconciler's desired state: one slice per distinct list of resolved ports
// (pods without any of the service's ports share one with no ports); with no pods, one
// placeholder slice without ports. Keyed by slice name.
std::map<std::string, json> slices_for(const json& svc, const std::vector<json>& pods) {
  const std::string family = service_family(svc);
  std::map<std::string, std::pair<json, json>> by_ports;  // ports.dump() -> (ports, endpoints)
  for (const auto& pod : pods) {
    const std::string ip = pod_ip_of(pod, family);
    if (ip.empty()) continue;
    json ports = endpoint_ports(svc, pod);
    auto& [p, endpoints] = by_ports[ports.dump()];
    if (endpoints.is_null()) p = ports, endpoints = json::array();
    endpoints.push_back(slice_endpoint(svc, pod, ip));
  }
  if (by_ports.empty()) by_ports["placeholder"] = {json(nullptr), json::array()};
  std::map<std::string, json> out;
  for (auto& [key, entry] : by_ports) {
    json slice = slice_object(svc, family, std::move(entry.second), std::move(entry.first));
    std::string name = slice["metadata"]["name"];
    out[name] = std::move(slice);
  }
  return out;
}

// Slices this controller made for the service that the desired state no longer has.
void remove_stale_slices(Rest& rest, const json& svc, const std::map<std::string, json>& keep) {
  const std::string ns = svc["metadata"]["namespace"];
  const std::string uid = svc["metadata"].value("uid", "");
  for (const auto& s : rest.store().list("endpointslices", ns)) {
    const json labels = s["metadata"].value("labels", json::object());
    if (labels.value(kServiceName, "") != svc["metadata"]["name"] ||
        labels.value(kSliceManagedBy, "") != kSliceController || !owned_by(s, uid) ||
        keep.count(s["metadata"]["name"])) {
      continue;
    }
    rest.remove({&resource_by_plural("endpointslices"), ns, s["metadata"]["name"], ""}, false);
  }
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
  auto slices = slices_for(svc, pods);
  for (const auto& [name, slice] : slices) put(rest, "endpointslices", slice);
  remove_stale_slices(rest, svc, slices);
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
