#include "kube/objects.hpp"

#include <algorithm>
#include <cstdint>

#include "kube/client.hpp"
#include "kube/text.hpp"

namespace lpk::kube {

using nlohmann::json;

namespace {

std::int64_t number_of(const json& value, std::int64_t fallback = 0) {
  return value.is_number_integer() ? value.get<std::int64_t>() : fallback;
}

constexpr WorkloadKind kKinds[] = {WorkloadKind::deployment, WorkloadKind::statefulset,
                                   WorkloadKind::replicaset, WorkloadKind::pod};

}  // namespace

const json& field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string text_of(const json& value) {
  return value.is_string() ? value.get<std::string>() : "";
}

const char* to_string(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::deployment: return "Deployment";
    case WorkloadKind::statefulset: return "StatefulSet";
    case WorkloadKind::replicaset: return "ReplicaSet";
    case WorkloadKind::pod: return "Pod";
  }
  return "?";
}

std::optional<WorkloadKind> workload_kind(std::string_view kind) {
  for (auto k : kKinds) {
    if (kind == to_string(k)) return k;
  }
  return std::nullopt;
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
  return text::ascii_lower(to_string(kind)) + " " + ns + "/" + name;
}

std::string WorkloadRef::path() const {
  return resource_path(group_version_of(kind), ns, resource_of(kind), name);
}

std::optional<ControllerRef> controller_of(const json& object) {
  for (const auto& owner : field(field(object, "metadata"), "ownerReferences")) {
    const auto& controller = field(owner, "controller");
    if (!controller.is_boolean() || !controller.get<bool>()) continue;
    return ControllerRef{text_of(field(owner, "kind")), text_of(field(owner, "name")),
                         text_of(field(owner, "apiVersion")), text_of(field(owner, "uid"))};
  }
  return std::nullopt;
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

bool pod_active(const json& pod) {
  auto phase = text_of(field(field(pod, "status"), "phase"));
  return phase != "Succeeded" && phase != "Failed" &&
         field(field(pod, "metadata"), "deletionTimestamp").is_null();
}

bool pod_ready(const json& pod) {
  const auto& meta = field(pod, "metadata");
  const auto& status = field(pod, "status");
  if (!field(meta, "deletionTimestamp").is_null()) return false;
  if (text_of(field(status, "phase")) != "Running") return false;
  for (const auto& condition : field(status, "conditions")) {
    if (text_of(field(condition, "type")) == "Ready") {
      return text_of(field(condition, "status")) == "True";
    }
  }
  return false;
}

bool rollout_complete(WorkloadKind kind, const json& object) {
  const auto& meta = field(object, "metadata");
  const auto& spec = field(object, "spec");
  const auto& status = field(object, "status");
  auto wanted = number_of(field(spec, "replicas"), 1);
  if (number_of(field(status, "observedGeneration")) < number_of(field(meta, "generation"))) {
    return false;
  }
  switch (kind) {
    case WorkloadKind::deployment:
      return number_of(field(status, "updatedReplicas")) == wanted &&
             number_of(field(status, "replicas")) == wanted &&
             number_of(field(status, "availableReplicas")) == wanted;
    case WorkloadKind::statefulset: {
      // As kubectl's StatefulSetStatusViewer: with a partition, the rollout is complete once
      // the pods at or above it are updated ("partitioned roll out complete"); OnDelete counts
      // updated pods, since nothing else moves the revisions.
      if (number_of(field(status, "readyReplicas")) != wanted) return false;
      const auto& strategy = field(spec, "updateStrategy");
      if (text_of(field(strategy, "type")) == "OnDelete") {
        return number_of(field(status, "updatedReplicas")) == wanted;
      }
      if (field(field(strategy, "rollingUpdate"), "partition").is_number_integer()) {
        return number_of(field(status, "updatedReplicas")) >=
               wanted - statefulset_partition(object);
      }
      return number_of(field(status, "updatedReplicas"), wanted) == wanted &&
             text_of(field(status, "currentRevision")) == text_of(field(status, "updateRevision"));
    }
    case WorkloadKind::replicaset:
      return number_of(field(status, "readyReplicas")) == wanted &&
             number_of(field(status, "replicas")) == wanted;
    case WorkloadKind::pod:
      return pod_ready(object);
  }
  return false;
}

std::int64_t statefulset_partition(const json& statefulset) {
  const auto& strategy = field(field(statefulset, "spec"), "updateStrategy");
  if (text_of(field(strategy, "type")) == "OnDelete") return 0;
  return std::max<std::int64_t>(0, number_of(field(field(strategy, "rollingUpdate"), "partition")));
}

bool updates_on_delete(WorkloadKind kind, const json& object) {
  return kind == WorkloadKind::statefulset &&
         text_of(field(field(field(object, "spec"), "updateStrategy"), "type")) == "OnDelete";
}

std::int64_t pod_ordinal(const json& pod) {
  auto name = text_of(field(field(pod, "metadata"), "name"));
  auto dash = name.rfind('-');
  if (dash == std::string::npos || dash + 1 == name.size()) return -1;
  std::int64_t ordinal = 0;
  for (auto c : name.substr(dash + 1)) {
    if (c < '0' || c > '9' || ordinal > (INT64_MAX - 9) / 10) return -1;
    ordinal = ordinal * 10 + (c - '0');
  }
  return ordinal;
}

namespace {

std::string condition_failure(const json& workload) {
  // Conditions of a generation the controller has not seen yet describe the previous rollout.
  const auto& observed = field(field(workload, "status"), "observedGeneration");
  const auto& generation = field(field(workload, "metadata"), "generation");
  if (observed.is_number_integer() && generation.is_number_integer() &&
      observed.get<std::int64_t>() < generation.get<std::int64_t>()) {
    return {};
  }
  for (const auto& c : field(field(workload, "status"), "conditions")) {
    auto type = text_of(field(c, "type"));
    auto reason = text_of(field(c, "reason"));
    auto message = text_of(field(c, "message"));
    bool is_true = text_of(field(c, "status")) == "True";
    if ((type == "Progressing" && !is_true && reason == "ProgressDeadlineExceeded") ||
        (type == "ReplicaFailure" && is_true)) {
      return reason + (message.empty() ? "" : ": " + message);
    }
  }
  return {};
}

std::string container_failure(const json& pod) {
  static const std::set<std::string> kStuck = {
      "ErrImagePull",  "ImagePullBackOff",           "InvalidImageName",     "CrashLoopBackOff",
      "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"};
  const auto& status = field(pod, "status");
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    for (const auto& c : field(status, list)) {
      const auto& waiting = field(field(c, "state"), "waiting");
      auto reason = text_of(field(waiting, "reason"));
      if (!kStuck.count(reason)) continue;
      auto message = text_of(field(waiting, "message"));
      return "pod " + text_of(field(field(pod, "metadata"), "name")) + " container " +
             text_of(field(c, "name")) + ": " + reason + (message.empty() ? "" : ": " + message);
    }
  }
  return {};
}

}  // namespace

std::string rollout_failure(const json& workload, const json& pods) {
  if (auto why = condition_failure(workload); !why.empty()) return why;
  for (const auto& pod : pods) {
    if (auto why = container_failure(pod); !why.empty()) return why;
  }
  return {};
}

std::string selector_text(const json& label_selector) {
  std::string out;
  auto add = [&](const std::string& term) { out += (out.empty() ? "" : ",") + term; };
  for (const auto& [key, value] : field(label_selector, "matchLabels").items()) {
    add(key + "=" + text_of(value));
  }
  for (const auto& expr : field(label_selector, "matchExpressions")) {
    auto key = text_of(field(expr, "key"));
    auto op = text_of(field(expr, "operator"));
    std::string values;
    for (const auto& v : field(expr, "values")) values += (values.empty() ? "" : ",") + text_of(v);
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

TargetPort target_port_of(const json& service_port) {
  const auto& target = field(service_port, "targetPort");
  if (target.is_string()) {
    auto s = target.get<std::string>();
    if (!s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), ::isdigit)) {
      auto n = std::stoi(s);
      if (n <= 65535) return {static_cast<std::uint16_t>(n), {}};
    }
    return {0, s};
  }
  if (target.is_number_integer()) return {static_cast<std::uint16_t>(target.get<int>()), {}};
  return {static_cast<std::uint16_t>(number_of(field(service_port, "port"))), {}};
}

std::optional<std::uint16_t> container_port_for(const TargetPort& target, const json& container,
                                                bool& declared) {
  declared = false;
  for (const auto& port : field(container, "ports")) {
    auto container_port = static_cast<std::uint16_t>(number_of(field(port, "containerPort")));
    if (!target.name.empty() ? text_of(field(port, "name")) == target.name
                             : container_port == target.number) {
      declared = true;
      return container_port;
    }
  }
  if (target.name.empty()) return target.number;
  return std::nullopt;
}

std::set<std::uint16_t> declared_ports(const json& pod_spec) {
  std::set<std::uint16_t> ports;
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& container : field(pod_spec, list)) {
      for (const auto& port : field(container, "ports")) {
        auto number = number_of(field(port, "containerPort"));
        if (number > 0 && number <= 65535) ports.insert(static_cast<std::uint16_t>(number));
      }
    }
  }
  return ports;
}

}  // namespace lpk::kube
