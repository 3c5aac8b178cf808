#include "proxy/workload.hpp"

#include <algorithm>
#include <set>

namespace lpk::proxy {

using nlohmann::json;

namespace {

const json& field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string text(const json& value) { return value.is_string() ? value.get<std::string>() : ""; }

std::int64_t number(const json& value, std::int64_t fallback = 0) {
  return value.is_number_integer() ? value.get<std::int64_t>() : fallback;
}

/// The service port's target: a number, or the name of a container port.
struct TargetPort {
  std::uint16_t number = 0;
  std::string name;
};

TargetPort target_of(const json& service_port) {
  const auto& target = field(service_port, "targetPort");
  if (target.is_string()) {
    // The API also allows a numeric string ("8080"): it means the number.
    auto s = target.get<std::string>();
    if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) {
      return {static_cast<std::uint16_t>(std::stoi(s)), {}};
    }
    return {0, s};
  }
  if (target.is_number_integer()) return {static_cast<std::uint16_t>(target.get<int>()), {}};
  return {static_cast<std::uint16_t>(number(field(service_port, "port"))), {}};
}

/// The container port `target` reaches in `container`, if the container declares it (named
/// ports must be declared; a number reaches the container whether declared or not).
std::optional<std::uint16_t> resolve(const TargetPort& target, const json& container,
                                     bool& declared) {
  declared = false;
  for (const auto& port : field(container, "ports")) {
    auto container_port = static_cast<std::uint16_t>(number(field(port, "containerPort")));
    if (!target.name.empty() ? text(field(port, "name")) == target.name
                             : container_port == target.number) {
      declared = true;
      return container_port;
    }
  }
  if (target.name.empty()) return target.number;
  return std::nullopt;
}

const json* find_container(const json& pod_spec, const std::string& name) {
  for (const auto& c : field(pod_spec, "containers")) {
    if (text(field(c, "name")) == name) return &c;
  }
  return nullptr;
}

std::string service_name(const json& service) {
  return text(field(field(service, "metadata"), "name"));
}

std::vector<PortRoute> routes_for(const json& service, const json& container) {
  std::vector<PortRoute> routes;
  for (const auto& port : field(field(service, "spec"), "ports")) {
    bool declared = false;
    auto container_port = resolve(target_of(port), container, declared);
    if (!container_port) continue;
    auto protocol = text(field(port, "protocol"));
    routes.push_back({text(field(port, "name")),
                      static_cast<std::uint16_t>(number(field(port, "port"))), *container_port,
                      protocol.empty() ? "TCP" : protocol});
  }
  return routes;
}

}  // namespace

const char* to_string(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::deployment: return "Deployment";
    case WorkloadKind::statefulset: return "StatefulSet";
    case WorkloadKind::replicaset: return "ReplicaSet";
    case WorkloadKind::pod: return "Pod";
  }
  return "?";
}

const char* resource_of(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::deployment: return "deployments";
    case WorkloadKind::statefulset: return "statefulsets";
    case WorkloadKind::replicaset: return "replicasets";
    case WorkloadKind::pod: return "pods";
  }
  return "?";
}

const char* group_version_of(WorkloadKind kind) {
  return kind == WorkloadKind::pod ? "v1" : "apps/v1";
}

std::string WorkloadRef::describe() const {
  std::string kind_text = to_string(kind);
  std::transform(kind_text.begin(), kind_text.end(), kind_text.begin(), ::tolower);
  return kind_text + " " + ns + "/" + name;
}

WorkloadRef owner_of(const json& pod, const json* replicaset) {
  const auto& meta = field(pod, "metadata");
  WorkloadRef ref{WorkloadKind::pod, text(field(meta, "namespace")), text(field(meta, "name"))};
  for (const auto& owner : field(meta, "ownerReferences")) {
    if (!field(owner, "controller").is_boolean() || !owner["controller"].get<bool>()) continue;
    auto kind = text(field(owner, "kind"));
    auto name = text(field(owner, "name"));
    if (kind == "StatefulSet") return {WorkloadKind::statefulset, ref.ns, name};
    if (kind == "Deployment") return {WorkloadKind::deployment, ref.ns, name};
    if (kind == "ReplicaSet") {
      WorkloadRef rs{WorkloadKind::replicaset, ref.ns, name};
      if (replicaset) {
        auto parent = owner_of(*replicaset);
        if (parent.kind == WorkloadKind::deployment) return parent;
      }
      return rs;
    }
    throw WorkloadError("pod " + ref.ns + "/" + ref.name + " is controlled by a " + kind + " " +
                        name + ", which lpk cannot change; connect to a service backed by a "
                        "Deployment, StatefulSet, ReplicaSet or bare Pod");
  }
  return ref;
}

ServedContainer served_container(const json& service, const json& pod_spec,
                                 const std::string& wanted) {
  auto svc = service_name(service);
  if (!wanted.empty()) {
    const auto* container = find_container(pod_spec, wanted);
    if (!container) {
      std::string names;
      for (const auto& c : field(pod_spec, "containers")) {
        names += (names.empty() ? "" : ", ") + text(field(c, "name"));
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
      resolve(target_of(port), c, declared);
      if (declared) {
        declaring.push_back(text(field(c, "name")));
        break;
      }
    }
  }
  const auto& containers = field(pod_spec, "containers");
  if (declaring.empty() && containers.size() == 1) {
    declaring.push_back(text(field(containers[0], "name")));
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

json template_of(WorkloadKind kind, const json& object) {
  if (kind != WorkloadKind::pod) return field(field(object, "spec"), "template");
  json tmpl = {{"metadata", json::object()}, {"spec", field(object, "spec")}};
  const auto& meta = field(object, "metadata");
  for (const char* key : {"labels", "annotations"}) {
    if (meta.contains(key)) tmpl["metadata"][key] = meta[key];
  }
  return tmpl;
}

std::vector<std::string> mount_paths(const json& pod_spec, const std::string& container) {
  std::vector<std::string> paths;
  const auto* c = find_container(pod_spec, container);
  if (!c) return paths;
  for (const auto& mount : field(*c, "volumeMounts")) {
    auto path = text(field(mount, "mountPath"));
    if (!path.empty()) paths.push_back(path);
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
  args.push_back("--container");  // names the container in the environment report
  args.push_back(container);
  return {{"name", container},
          {"image", agent.image},
          {"command", json::array({"lpk-agent"})},
          {"args", args}};
}

constexpr const char* kAppOnlyFields[] = {"livenessProbe", "readinessProbe", "startupProbe",
                                          "lifecycle"};

}  // namespace

json agent_patch(WorkloadKind kind, const json& object, const std::string& container,
                 const AgentSpec& agent) {
  auto fields = agent_container_fields(container, agent);
  for (const char* key : kAppOnlyFields) fields[key] = nullptr;  // null deletes in a merge patch
  json patch;
  patch["metadata"]["annotations"][kOriginalAnnotation] = template_of(kind, object).dump();
  patch["metadata"]["annotations"][kSessionAnnotation] = agent.session;
  patch["spec"]["template"]["spec"]["containers"] = json::array({fields});
  return patch;
}

json agent_template(const json& pod_template, const std::string& container,
                    const AgentSpec& agent) {
  auto result = pod_template;
  auto fields = agent_container_fields(container, agent);
  for (auto& c : result["spec"]["containers"]) {
    if (text(field(c, "name")) != container) continue;
    for (auto& [key, value] : fields.items()) c[key] = value;
    for (const char* key : kAppOnlyFields) c.erase(key);
  }
  return result;
}

std::optional<json> saved_template(const json& object) {
  const auto& saved = field(field(field(object, "metadata"), "annotations"), kOriginalAnnotation);
  if (!saved.is_string()) return std::nullopt;
  auto parsed = json::parse(saved.get<std::string>(), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

json restored_object(WorkloadKind kind, const json& object) {
  auto original = saved_template(object);
  const auto& meta = field(object, "metadata");
  if (!original) {
    throw WorkloadError(std::string(to_string(kind)) + " " + text(field(meta, "namespace")) +
                        "/" + text(field(meta, "name")) + " has no readable " +
                        kOriginalAnnotation + " annotation; there is nothing lpk can restore");
  }
  auto result = object;
  auto& annotations = result["metadata"]["annotations"];
  annotations.erase(kOriginalAnnotation);
  annotations.erase(kSessionAnnotation);
  if (annotations.empty()) result["metadata"].erase("annotations");
  result.erase("status");
  if (kind == WorkloadKind::pod) {
    result["spec"] = (*original)["spec"];
  } else {
    result["spec"]["template"] = *original;
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
  return result;
}

bool rollout_complete(WorkloadKind kind, const json& object) {
  const auto& meta = field(object, "metadata");
  const auto& spec = field(object, "spec");
  const auto& status = field(object, "status");
  auto wanted = number(field(spec, "replicas"), 1);
  if (number(field(status, "observedGeneration")) < number(field(meta, "generation"))) {
    return false;
  }
  switch (kind) {
    case WorkloadKind::deployment:
      return number(field(status, "updatedReplicas")) == wanted &&
             number(field(status, "replicas")) == wanted &&
             number(field(status, "availableReplicas")) == wanted;
    case WorkloadKind::statefulset:
      return number(field(status, "readyReplicas")) == wanted &&
             number(field(status, "updatedReplicas"), wanted) == wanted &&
             text(field(status, "currentRevision")) == text(field(status, "updateRevision"));
    case WorkloadKind::replicaset:
      return number(field(status, "readyReplicas")) == wanted &&
             number(field(status, "replicas")) == wanted;
    case WorkloadKind::pod:
      return pod_ready(object);
  }
  return false;
}

std::string selector_text(const json& label_selector) {
  std::string out;
  auto add = [&](const std::string& term) { out += (out.empty() ? "" : ",") + term; };
  for (const auto& [key, value] : field(label_selector, "matchLabels").items()) {
    add(key + "=" + text(value));
  }
  for (const auto& expr : field(label_selector, "matchExpressions")) {
    auto key = text(field(expr, "key"));
    auto op = text(field(expr, "operator"));
    std::string values;
    for (const auto& v : field(expr, "values")) values += (values.empty() ? "" : ",") + text(v);
    if (op == "In") add(key + " in (" + values + ")");
    else if (op == "NotIn") add(key + " notin (" + values + ")");
    else if (op == "Exists") add(key);
    else if (op == "DoesNotExist") add("!" + key);
  }
  return out;
}

std::string service_selector_text(const json& service) {
  return selector_text(json{{"matchLabels", field(field(service, "spec"), "selector")}});
}

bool pod_ready(const json& pod) {
  const auto& meta = field(pod, "metadata");
  const auto& status = field(pod, "status");
  if (!field(meta, "deletionTimestamp").is_null()) return false;
  if (text(field(status, "phase")) != "Running") return false;
  for (const auto& condition : field(status, "conditions")) {
    if (text(field(condition, "type")) == "Ready") return text(field(condition, "status")) == "True";
  }
  return false;
}

}  // namespace lpk::proxy
