#include "proxy/takeover/workload.hpp"

#include <algorithm>
#include <set>

#include "kube/text.hpp"

namespace lpk::proxy {

using nlohmann::json;

namespace {

using kube::field;
using kube::text_of;

const json* find_container(const json& pod_spec, const std::string& name) {
  for (const auto& c : field(pod_spec, "containers")) {
    if (text_of(field(c, "name")) == name) return &c;
  }
  return nullptr;
}

std::string service_name(const json& service) {
  return text_of(field(field(service, "metadata"), "name"));
}

std::vector<PortRoute> routes_for(const json& service, const json& container) {
  std::vector<PortRoute> routes;
  for (const auto& port : field(field(service, "spec"), "ports")) {
    bool declared = false;
    auto container_port = kube::container_port_for(kube::target_port_of(port), container, declared);
    if (!container_port) continue;
    auto protocol = text_of(field(port, "protocol"));
    const auto& service_port = field(port, "port");
    routes.push_back({text_of(field(port, "name")),
                      static_cast<std::uint16_t>(service_port.is_number_integer() ? service_port.get<int>() : 0),
                      *container_port,
                      protocol.empty() ? "TCP" : protocol});
  }
  return routes;
}

}  // namespace

WorkloadRef owner_of(const json& pod, const json* replicaset) {
  const auto& meta = field(pod, "metadata");
  WorkloadRef ref{WorkloadKind::pod, text_of(field(meta, "namespace")), text_of(field(meta, "name"))};
  auto controller = kube::controller_of(pod);
  if (!controller) return ref;
  auto kind = kube::workload_kind(controller->kind);
  if (!kind || *kind == WorkloadKind::pod) {
    // (Also reached for a pod's ReplicaSet, which lists and gets spell with their kind.)
    auto what = text::ascii_lower(text_of(field(pod, "kind")));
    throw WorkloadError((what.empty() ? "pod" : what) + " " + ref.ns + "/" + ref.name +
                        " is controlled by a " +
                        controller->kind + " " + controller->name +
                        ", which lpk cannot change; connect to a service backed by a "
                        "Deployment, StatefulSet, ReplicaSet or bare Pod");
  }
  if (*kind == WorkloadKind::replicaset && replicaset) {
    auto parent = owner_of(*replicaset);
    if (parent.kind == WorkloadKind::deployment) return parent;
  }
  return {*kind, ref.ns, controller->name};
}

ServedContainer served_container(const json& service, const json& pod_spec,
                                 const std::string& wanted) {
  auto svc = service_name(service);
  if (!wanted.empty()) {
    const auto* container = find_container(pod_spec, wanted);
    if (!container) {
      std::string names;
      for (const auto& c : field(pod_spec, "containers")) {
        names += (names.empty() ? "" : ", ") + text_of(field(c, "name"));
      }
      throw WorkloadError("the pods of service " + svc + " have no container named " + wanted +
                          " (they have: " + names + "); fix --container");
    }
    return {wanted, routes_for(service, *container)};
  }
  // A container that declares a target port serves it; with no declarations at all, a
  // single container serves every numeric target (ports need not be declared).
  std::vector<std::string> declaring;
  for (const auto& c : field(pod_spec, "containers")) {
    for (const auto& port : field(field(service, "spec"), "ports")) {
      bool declared = false;
      kube::container_port_for(kube::target_port_of(port), c, declared);
      if (declared) {
        declaring.push_back(text_of(field(c, "name")));
        break;
      }
    }
  }
  const auto& containers = field(pod_spec, "containers");
  if (declaring.empty() && containers.size() == 1) {
    declaring.push_back(text_of(field(containers[0], "name")));
  }
  if (declaring.empty()) {
    throw WorkloadError("no container of service " + svc + "'s pods declares its target ports; "
                        "name the container to replace with --container");
  }
  if (declaring.size() > 1) {
    std::string names;
    for (const auto& n : declaring) names += (names.empty() ? "" : " and ") + n;
    throw WorkloadError("service " + svc + "'s ports are served by containers " + names +
                        "; choose one with --container");
  }
  return {declaring[0], routes_for(service, *find_container(pod_spec, declaring[0]))};
}

std::vector<std::string> mount_paths(const json& pod_spec, const std::string& container,
                                     const json& live_pod_spec) {
  std::vector<std::string> paths;
  for (const auto* spec : {&pod_spec, &live_pod_spec}) {
    const auto* c = find_container(*spec, container);
    if (!c) continue;
    for (const auto& mount : field(*c, "volumeMounts")) {
      auto path = text_of(field(mount, "mountPath"));
      if (!path.empty() && std::find(paths.begin(), paths.end(), path) == paths.end()) {
        paths.push_back(path);
      }
    }
  }
  return paths;
}

namespace {

json agent_container_fields(const std::string& container, const AgentSpec& agent) {
  json args = json::array({"--listen", "127.0.0.1:" + std::to_string(agent.tunnel_port)});
  for (auto port : agent.serve_ports) {
    args.push_back("--serve");
    args.push_back(std::to_string(port));
  }
  if (!agent.report_mounts.empty()) {
    std::string joined;
    for (const auto& p : agent.report_mounts) joined += (joined.empty() ? "" : ",") + p;
    args.push_back("--report-mounts");
    args.push_back(joined);
  }
  args.push_back("--file-limit");
  args.push_back(std::to_string(agent.file_limit));
  if (agent.dead_link_timeout != AgentSpec{}.dead_link_timeout) {
    args.push_back("--dead-link-timeout");
    args.push_back(std::to_string(agent.dead_link_timeout.count()) + "ms");
  }
  if (agent.resume_grace != AgentSpec{}.resume_grace) {
    args.push_back("--resume-grace");
    args.push_back(std::to_string(agent.resume_grace.count()) + "ms");
  }
  args.push_back("--container");  // names the container in the environment report
  args.push_back(container);
  json fields = {{"name", container},
                 {"image", agent.image},
                 {"command", json::array({"lpk-agent"})},
                 {"args", args}};
  if (agent.keep_image) {
    // The container's own image, user and environment; the agent comes from the emptyDir the
    // init container fills, run through the loader it brought.
    fields.erase("image");
    fields["command"] = kKeptImageAgentCommand;
    fields["volumeMounts"] = json::array({{{"name", kKeptImageAgentVolume},
                                           {"mountPath", kKeptImageAgentDir},
                                           {"readOnly", true}}});
  }
  if (!agent.secret_name.empty()) {
    // By reference: the secret never appears in the pod spec, which anyone allowed to read
    // pods (or the workload) sees.
    fields["args"].push_back("--secret-env");
    fields["args"].push_back(kSecretEnv);
    fields["env"] = json::array(
        {{{"name", kSecretEnv},
          {"valueFrom", {{"secretKeyRef", {{"name", agent.secret_name}, {"key", kSecretKey}}}}}}});
  }
  return fields;
}

/// `entries` merged into the list `object[key]` as a strategic merge patch does: an entry
/// replaces the one with the same `merge_key`, or is appended.
void merge_list(json& object, const std::string& key, const json& entries,
                const char* merge_key) {
  auto list = field(object, key.c_str()).is_array() ? object[key] : json::array();
  for (const auto& entry : entries) {
    auto same = std::find_if(list.begin(), list.end(), [&](const json& e) {
      return text_of(field(e, merge_key)) == text_of(field(entry, merge_key));
    });
    if (same != list.end()) *same = entry;
    else list.push_back(entry);
  }
  object[key] = list;
}

/// `fields` (agent_container_fields) applied to `c` as the server merges the patch: env by name,
/// volumeMounts by mountPath.
void apply_agent_fields(json& c, const json& fields) {
  for (const auto& [key, value] : fields.items()) {
    if (key == "env") merge_list(c, key, value, "name");
    else if (key == "volumeMounts") merge_list(c, key, value, "mountPath");
    else c[key] = value;
  }
}

/// What --keep-image adds to the pod spec: the init container that copies the agent from its
/// image into the emptyDir, and that emptyDir (both merge by name).
json kept_image_additions(const AgentSpec& agent) {
  json mount = {{"name", kKeptImageAgentVolume}, {"mountPath", kKeptImageAgentDir}};
  json init = {{"name", kKeptImageInitContainer},
               {"image", agent.image},
               {"command", json::array({"lpk-agent", "install", kKeptImageAgentDir})},
               {"volumeMounts", json::array({mount})}};
  return {{"initContainers", json::array({init})},
          {"volumes", json::array({{{"name", kKeptImageAgentVolume}, {"emptyDir", json::object()}}})}};
}

constexpr const char* kUnprivilegedPorts = "net.ipv4.ip_unprivileged_port_start";

/// True when a volume's files are readable only by their owner (and group): a secret or
/// configMap with defaultMode or an item mode like 0400 or 0440.
bool owner_only(const json& volume) {
  for (const char* kind : {"secret", "configMap", "projected"}) {
    const auto& source = field(volume, kind);
    if (!source.is_object()) continue;
    auto readable = [](const json& mode) { return !mode.is_number() || (mode.get<int>() & 04); };
    if (!readable(field(source, "defaultMode"))) return true;
    for (const auto& item : field(source, "items")) {
      if (!readable(field(item, "mode"))) return true;
    }
  }
  return false;
}

/// The pod securityContext the agent needs, or null when the pod's own will do. The agent image
/// runs as uid 10001: serving a port below 1024 needs the safe sysctl that lowers the first
/// unprivileged port, and files that only their owner may read need an fsGroup, which makes the
/// kubelet give the group read access.
json agent_pod_security(const json& pod_spec, const std::string& container,
                        const AgentSpec& agent) {
  // With its image kept, the agent runs as the application did: what let the application
  // serve its ports and read its files lets the agent.
  if (agent.keep_image) return json();
  auto security = field(pod_spec, "securityContext").is_object() ? pod_spec["securityContext"]
                                                                 : json::object();
  bool changed = false;
  auto lowest = std::min_element(agent.serve_ports.begin(), agent.serve_ports.end());
  if (lowest != agent.serve_ports.end() && *lowest < 1024) {
    auto sysctls = field(security, "sysctls").is_array() ? security["sysctls"] : json::array();
    bool set = false;
    for (const auto& s : sysctls) set = set || text_of(field(s, "name")) == kUnprivilegedPorts;
    if (!set) {  // a pod that sets it chose its value; the agent does not override it
      sysctls.push_back({{"name", kUnprivilegedPorts}, {"value", std::to_string(*lowest)}});
      security["sysctls"] = sysctls;  // a list without a merge key: the patch sends it whole
      changed = true;
    }
  }
  const auto* c = find_container(pod_spec, container);
  if (c && !security.contains("fsGroup")) {
    for (const auto& mount : field(*c, "volumeMounts")) {
      for (const auto& volume : field(pod_spec, "volumes")) {
        if (text_of(field(volume, "name")) != text_of(field(mount, "name"))) continue;
        if (owner_only(volume) && !security.contains("fsGroup")) {
          security["fsGroup"] = kAgentUid;
          changed = true;
        }
      }
    }
  }
  return changed ? security : json();
}

constexpr const char* kAppOnlyFields[] = {"livenessProbe", "readinessProbe", "startupProbe",
                                          "lifecycle"};

}  // namespace

json agent_patch(WorkloadKind kind, const json& object, const std::string& container,
                 const AgentSpec& agent) {
  auto fields = agent_container_fields(container, agent);
  for (const char* key : kAppOnlyFields) fields[key] = nullptr;  // null deletes in a merge patch
  json patch;
  if (agent.template_configmap.empty()) {
    patch["metadata"]["annotations"][kOriginalAnnotation] = kube::template_of(kind, object).dump();
  } else {
    patch["metadata"]["annotations"][kOriginalConfigMapAnnotation] = agent.template_configmap;
  }
  patch["metadata"]["annotations"][kSessionAnnotation] = agent.session;
  patch["metadata"]["annotations"][kAgentAnnotation] =
      template_identity(agent_template(kube::template_of(kind, object), container, agent)).dump();
  patch["spec"]["template"]["spec"]["containers"] = json::array({fields});
  if (agent.keep_image) {
    auto additions = kept_image_additions(agent);  // named: items() does not keep it alive
    for (const auto& [key, value] : additions.items()) {
      patch["spec"]["template"]["spec"][key] = value;
    }
  }
  auto security = agent_pod_security(field(kube::template_of(kind, object), "spec"), container,
                                     agent);
  if (!security.is_null()) patch["spec"]["template"]["spec"]["securityContext"] = security;
  return patch;
}

json agent_template(const json& pod_template, const std::string& container,
                    const AgentSpec& agent) {
  auto result = pod_template;
  auto fields = agent_container_fields(container, agent);
  for (auto& c : result["spec"]["containers"]) {
    if (text_of(field(c, "name")) != container) continue;
    apply_agent_fields(c, fields);
    for (const char* key : kAppOnlyFields) c.erase(key);
  }
  if (agent.keep_image) {
    auto additions = kept_image_additions(agent);  // named: items() does not keep it alive
    for (const auto& [key, value] : additions.items()) {
      merge_list(result["spec"], key, value, "name");
    }
  }
  auto security = agent_pod_security(field(pod_template, "spec"), container, agent);
  if (!security.is_null()) result["spec"]["securityContext"] = security;
  return result;
}

bool runs_template(const json& pod, const json& pod_template) {
  const auto& have_containers = field(field(pod, "spec"), "containers");
  for (const auto& want : field(field(pod_template, "spec"), "containers")) {
    bool found = false;
    for (const auto& have : have_containers) {
      if (text_of(field(have, "name")) != text_of(field(want, "name"))) continue;
      found = field(have, "image") == field(want, "image") &&
              field(have, "command") == field(want, "command");
    }
    if (!found) return false;
  }
  return true;
}

kube::ListOptions pods_of(const WorkloadRef& ref, const json& object) {
  kube::ListOptions options;
  if (ref.kind == WorkloadKind::pod) {
    options.field_selector = "metadata.name=" + ref.name;
  } else {
    options.label_selector = kube::selector_text(field(field(object, "spec"), "selector"));
  }
  return options;
}

json template_identity(const json& pod_template) {
  json identity = json::object();
  for (const auto& c : field(field(pod_template, "spec"), "containers")) {
    json env = json::object();
    for (const auto& e : field(c, "env")) {
      if (field(e, "value").is_string()) env[text_of(field(e, "name"))] = field(e, "value");
    }
    identity[text_of(field(c, "name"))] = {{"image", field(c, "image")},
                                           {"command", field(c, "command")},
                                           {"args", field(c, "args")},
                                           {"env", env}};
  }
  return identity;
}

std::string template_change(const json& installed, const json& current_template) {
  if (!installed.is_object()) return {};
  auto current = template_identity(current_template);
  std::string change;
  auto add = [&](const std::string& what) { change += (change.empty() ? "" : "; ") + what; };
  for (const auto& [name, was] : installed.items()) {
    if (!current.contains(name)) {
      add("container " + name + " removed");
      continue;
    }
    const auto& now = current[name];
    if (now["image"] != was["image"]) {
      add("container " + name + ": image " + text_of(was["image"]) + " -> " +
          text_of(now["image"]));
    } else if (now["command"] != was["command"] || now["args"] != was["args"]) {
      add("container " + name + ": command changed");
    } else if (now["env"] != was["env"]) {
      add("container " + name + ": environment changed");
    }
  }
  for (const auto& [name, value] : current.items()) {
    if (!installed.contains(name)) add("container " + name + " added");
  }
  return change;
}

std::string gitops_warning(const WorkloadRef& ref, const json& object) {
  const auto& meta = field(object, "metadata");
  const auto& labels = field(meta, "labels");
  const auto& annotations = field(meta, "annotations");
  auto label = [&](const char* key) { return text_of(field(labels, key)); };
  std::string tool, how;
  if (auto id = text_of(field(annotations, "argocd.argoproj.io/tracking-id")); !id.empty()) {
    auto app = id.substr(0, id.find(':'));
    app = app.substr(app.find('_') == std::string::npos ? 0 : app.find('_') + 1);
    tool = "Argo CD application " + app;
    how = "`argocd app set " + app + " --sync-policy none` (and back to automated afterwards)";
  } else if (auto k = label("kustomize.toolkit.fluxcd.io/name"); !k.empty()) {
    auto ns = label("kustomize.toolkit.fluxcd.io/namespace");
    tool = "Flux Kustomization " + k;
    how = "`flux suspend kustomization " + k + (ns.empty() ? "" : " -n " + ns) +
          "` (and `flux resume` afterwards)";
  } else if (auto h = label("helm.toolkit.fluxcd.io/name"); !h.empty()) {
    auto ns = label("helm.toolkit.fluxcd.io/namespace");
    tool = "Flux HelmRelease " + h;
    how = "`flux suspend helmrelease " + h + (ns.empty() ? "" : " -n " + ns) +
          "` (and `flux resume` afterwards)";
  } else {
    return {};
  }
  return ref.describe() + " is managed by " + tool + ": a sync or self-heal puts its template " +
         "back during the session and ends it; pause it for the session with " + how;
}

bool carries_original(const json& object) {
  const auto& annotations = field(field(object, "metadata"), "annotations");
  return annotations.is_object() &&
         (annotations.contains(kOriginalAnnotation) ||
          annotations.contains(kOriginalConfigMapAnnotation));
}

std::string original_configmap(const json& object) {
  return text_of(field(field(field(object, "metadata"), "annotations"),
                       kOriginalConfigMapAnnotation));
}

std::optional<json> saved_template(const json& object) {
  const auto& saved = field(field(field(object, "metadata"), "annotations"), kOriginalAnnotation);
  if (!saved.is_string()) return std::nullopt;
  auto parsed = json::parse(saved.get<std::string>(), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

json restored_object(WorkloadKind kind, const json& object, const json& original) {
  auto result = object;
  auto& annotations = result["metadata"]["annotations"];
  annotations.erase(kOriginalAnnotation);
  annotations.erase(kOriginalConfigMapAnnotation);
  annotations.erase(kSessionAnnotation);
  annotations.erase(kAgentAnnotation);
  if (annotations.empty()) result["metadata"].erase("annotations");
  result.erase("status");
  if (kind == WorkloadKind::pod) {
    result["spec"] = original["spec"];
  } else {
    result["spec"]["template"] = original;
  }
  return result;
}

json recreated_pod(const json& pod, const json& pod_template) {
  json result = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", json::object()}};
  const auto& meta = field(pod, "metadata");
  for (const char* key : {"name", "namespace", "ownerReferences"}) {
    if (meta.contains(key)) result["metadata"][key] = meta[key];
  }
  for (const char* key : {"labels", "annotations"}) {
    const auto& value = field(field(pod_template, "metadata"), key);
    if (!value.is_null()) result["metadata"][key] = value;
  }
  result["spec"] = field(pod_template, "spec");
  // A pod is created unscheduled (its old node may be gone or full: the scheduler chooses), and
  // ephemeral containers can only be added through their subresource: create refuses them.
  if (result["spec"].is_object()) {
    result["spec"].erase("nodeName");
    result["spec"].erase("ephemeralContainers");
  }
  return result;
}

}  // namespace lpk::proxy
