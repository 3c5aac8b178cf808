#include "proxy/takeover/route_objects.hpp"

#include <cstdio>
#include <set>
#include <stdexcept>

#include "kube/text.hpp"

namespace lpk::proxy {

using nlohmann::json;
using kube::field;
using kube::text_of;

namespace {

/// `name` as a DNS label: cut to 63 characters, with a hash of the whole so that two long
/// names that share a beginning stay apart.
std::string dns_label(const std::string& name) {
  if (name.size() <= 63) return name;
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 16777619u;
  char hash[9];
  std::snprintf(hash, sizeof hash, "%08x", h);
  return name.substr(0, 54) + "-" + hash;
}


json labels_for_router(const std::string& service) {
  return {{"app.kubernetes.io/name", "lpk-router"},
          {"app.kubernetes.io/managed-by", "lpk"},
          {kRouterLabel, service}};
}

std::string selector_arg(const json& selector) {
  std::string text;
  for (const auto& [key, value] : selector.items()) {
    text += (text.empty() ? "" : ",") + key + "=" + text_of(value);
  }
  return text;
}

json router_container(const RouterSpec& spec) {
  json args = {"router", "--namespace", spec.ns, "--service", spec.service,
               "--original-selector", selector_arg(spec.selector),
               "--admin-port", std::to_string(spec.admin_port)};
  json ports = json::array();
  for (const auto& p : spec.ports) {
    auto port = std::to_string(p.container_port);
    args.push_back("--port");
    args.push_back(spec.original_cluster_ip.empty() ? port
                                                    : port + "=" + spec.original_cluster_ip +
                                                          ":" + port);
    json declared = {{"containerPort", p.container_port}, {"protocol", "TCP"}};
    if (!p.name.empty()) declared["name"] = p.name;
    ports.push_back(declared);
  }
  ports.push_back({{"name", "lpk-admin"}, {"containerPort", spec.admin_port}, {"protocol", "TCP"}});
  return {{"name", "router"},
          {"image", spec.image},
          {"command", {"lpk-agent"}},
          {"args", args},
          {"ports", ports},
          // Ready once it knows the routes and the original pods: only then may the Service
          // send it traffic.
          {"readinessProbe",
           {{"httpGet", {{"path", "/healthz"}, {"port", spec.admin_port}}},
            {"periodSeconds", 1},
            {"failureThreshold", 3}}}};
}

/// A volumeMount whose volume the pod spec lacks (a StatefulSet's volumeClaimTemplates make
/// those per pod): a Deployment made from the template could not start with it.
void drop_mounts_without_volume(json& pod_spec) {
  std::set<std::string> volumes;
  for (const auto& v : field(pod_spec, "volumes")) volumes.insert(text_of(field(v, "name")));
  for (const char* list : {"containers", "initContainers"}) {
    if (!pod_spec.contains(list)) continue;
    for (auto& c : pod_spec[list]) {
      if (!c.contains("volumeMounts")) continue;
      json kept = json::array();
      for (const auto& m : c["volumeMounts"]) {
        if (volumes.count(text_of(field(m, "name")))) kept.push_back(m);
      }
      c["volumeMounts"] = kept;
    }
  }
}

}  // namespace

bool is_http_token(std::string_view text) {
  if (text.empty()) return false;
  for (unsigned char c : text) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(char(c)) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

RouteSpec parse_route_header(const std::string& text, const std::string& session_id) {
  RouteSpec route;
  auto eq = text.find('=');
  if (eq != std::string::npos) {
    auto name = text.substr(0, eq);
    if (!is_http_token(name)) {
      throw std::invalid_argument("--route-header: '" + name + "' is not a valid header name "
                                  "(letters, digits and !#$%&'*+-.^_`|~ only)");
    }
    route.header = text::ascii_lower(name);
    route.value = text.substr(eq + 1);
  } else {
    route.value = text;
  }
  if (route.value.empty()) route.value = session_id;
  for (unsigned char c : route.value) {
    if (c < 0x21 || c == 0x7f) {
      throw std::invalid_argument("--route-header: the value may not hold spaces or control "
                                  "characters");
    }
  }
  return route;
}

std::string router_name(const std::string& service) { return dns_label("lpk-router-" + service); }

std::string original_service_name(const std::string& service) {
  return dns_label("lpk-original-" + service);
}

std::string route_lock_name(const std::string& service) { return dns_label("lpk-route-" + service); }

std::string routed_deployment_name(const std::string& service, const std::string& session_id) {
  return dns_label(service + "-lpk-" + session_id);
}

RouteMembers route_members(const json& service) {
  RouteMembers members;
  auto text = text_of(field(field(field(service, "metadata"), "annotations"),
                            kRouteSessionsAnnotation));
  auto parsed = json::parse(text.empty() ? "{}" : text, nullptr, false);
  if (!parsed.is_object()) return members;
  for (const auto& [id, m] : parsed.items()) {
    members[id] = {{text_of(field(m, "header")), text_of(field(m, "value"))},
                   text_of(field(m, "deployment")),
                   text_of(field(m, "owner"))};
  }
  return members;
}

json original_selector(const json& service) {
  auto saved = text_of(field(field(field(service, "metadata"), "annotations"),
                             kOriginalSelectorAnnotation));
  if (!saved.empty()) {
    auto parsed = json::parse(saved, nullptr, false);
    if (parsed.is_object()) return parsed;
  }
  auto selector = field(field(service, "spec"), "selector");
  return selector.is_object() ? selector : json::object();
}

json with_route_members(const json& service, const RouteMembers& members) {
  json s = service;
  json& annotations = s["metadata"]["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  if (members.empty()) {
    s["spec"]["selector"] = original_selector(service);
    annotations.erase(kOriginalSelectorAnnotation);
    annotations.erase(kRouteSessionsAnnotation);
    if (annotations.empty()) s["metadata"].erase("annotations");
    return s;
  }
  if (!annotations.contains(kOriginalSelectorAnnotation)) {
    annotations[kOriginalSelectorAnnotation] = original_selector(service).dump();
  }
  json list = json::object();
  for (const auto& [id, m] : members) {
    list[id] = {{"header", m.route.header},
                {"value", m.route.value},
                {"deployment", m.deployment},
                {"owner", m.owner}};
  }
  annotations[kRouteSessionsAnnotation] = list.dump();
  s["spec"]["selector"] = {{kRouterLabel, text_of(field(field(service, "metadata"), "name"))}};
  return s;
}

std::vector<RoutedPort> routed_ports(const json& pod_spec, const std::string& container,
                                     const std::vector<PortRoute>& routes) {
  std::vector<RoutedPort> ports;
  std::set<std::uint16_t> seen;
  for (const auto& r : routes) {
    if (r.protocol != "TCP" || !seen.insert(r.container_port).second) continue;
    RoutedPort p{"", r.container_port, r.service_port};
    for (const auto& c : field(pod_spec, "containers")) {
      if (text_of(field(c, "name")) != container) continue;
      for (const auto& declared : field(c, "ports")) {
        if (field(declared, "containerPort") == json(r.container_port)) {
          p.name = text_of(field(declared, "name"));
        }
      }
    }
    ports.push_back(p);
  }
  return ports;
}

std::uint16_t router_admin_port(const std::vector<RoutedPort>& ports) {
  std::uint16_t port = kRouterAdminPort;
  auto taken = [&](std::uint16_t p) {
    for (const auto& r : ports) {
      if (r.container_port == p) return true;
    }
    return false;
  };
  while (taken(port)) ++port;
  return port;
}

json original_service(const json& service, const std::vector<RoutedPort>& ports) {
  const auto& meta = field(service, "metadata");
  auto name = text_of(field(meta, "name"));
  json spec_ports = json::array();
  for (const auto& p : ports) {
    spec_ports.push_back({{"name", "port-" + std::to_string(p.container_port)},
                          {"port", p.container_port},
                          {"targetPort", p.container_port},
                          {"protocol", "TCP"}});
  }
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata",
           {{"name", original_service_name(name)},
            {"namespace", text_of(field(meta, "namespace"))},
            {"labels", {{"app.kubernetes.io/managed-by", "lpk"}, {kRouterLabel, name}}}}},
          {"spec", {{"selector", original_selector(service)}, {"ports", spec_ports}}}};
}

json router_deployment(const RouterSpec& spec) {
  auto labels = labels_for_router(spec.service);
  json pod_spec = {{"serviceAccountName", router_name(spec.service)},
                   {"containers", json::array({router_container(spec)})}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", router_name(spec.service)}, {"namespace", spec.ns},
                        {"labels", labels}}},
          {"spec",
           {{"replicas", 1},
            {"selector", {{"matchLabels", {{kRouterLabel, spec.service}}}}},
            {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod_spec}}}}}};
}

json router_admin_service(const RouterSpec& spec) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", router_name(spec.service)}, {"namespace", spec.ns},
                        {"labels", labels_for_router(spec.service)}}},
          {"spec",
           {{"selector", {{kRouterLabel, spec.service}}},
            {"ports", json::array({{{"name", "lpk-admin"},
                                    {"port", spec.admin_port},
                                    {"targetPort", spec.admin_port},
                                    {"protocol", "TCP"}}})}}}};
}

json router_service_account(const RouterSpec& spec) {
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", {{"name", router_name(spec.service)}, {"namespace", spec.ns},
                        {"labels", labels_for_router(spec.service)}}}};
}

json router_role(const RouterSpec& spec) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "Role"},
          {"metadata", {{"name", router_name(spec.service)}, {"namespace", spec.ns},
                        {"labels", labels_for_router(spec.service)}}},
          {"rules", json::array({{{"apiGroups", {""}},
                                  {"resources", {"pods"}},
                                  {"verbs", {"get", "list", "watch"}}}})}};
}

json router_role_binding(const RouterSpec& spec) {
  auto name = router_name(spec.service);
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "RoleBinding"},
          {"metadata", {{"name", name}, {"namespace", spec.ns},
                        {"labels", labels_for_router(spec.service)}}},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}},
          {"subjects",
           json::array({{{"kind", "ServiceAccount"}, {"name", name}, {"namespace", spec.ns}}})}};
}

json routed_deployment(const std::string& ns, const std::string& service,
                       const std::string& session_id, const RouteSpec& route,
                       const json& pod_template, const std::string& container,
                       const AgentSpec& agent) {
  const json labels = {{"app.kubernetes.io/name", "lpk-agent"},
                       {"app.kubernetes.io/managed-by", "lpk"},
                       {kSessionLabel, session_id},
                       {kRouteForLabel, service}};
  json tmpl = agent_template(pod_template, container, agent);
  tmpl["metadata"]["labels"] = labels;
  auto& annotations = tmpl["metadata"]["annotations"];
  annotations[kSessionAnnotation] = agent.session;
  annotations[kRouteHeaderAnnotation] = route.header;
  annotations[kRouteValueAnnotation] = route.value;
  drop_mounts_without_volume(tmpl["spec"]);
  auto name = routed_deployment_name(service, session_id);
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"labels", labels},
            {"annotations",
             {{kCreatedBySessionAnnotation, session_id},
              {kSessionAnnotation, agent.session},
              {kRouteServiceAnnotation, service}}}}},
          {"spec",
           {{"replicas", 0},
            {"selector", {{"matchLabels", {{kSessionLabel, session_id}, {kRouteForLabel, service}}}}},
            {"template", tmpl}}}};
}

}  // namespace lpk::proxy
