#include "tools/kubesim/controllers/statefulset_util.hpp"

#include <algorithm>

namespace lpk::kubesim::sts {

json revision_data(const json& set) {
  json tmpl = set["spec"]["template"];
  tmpl["$patch"] = "replace";
  return {{"spec", {{"template", tmpl}}}};
}

json new_revision(const json& set, int64_t revision, int collision_count) {
  json data = revision_data(set);
  std::string hash = template_hash(data, collision_count);
  json labels = set["spec"]["template"].value("metadata", json::object()).value(
      "labels", json::object());
  labels[kHashLabel] = hash;
  std::string prefix = set["metadata"]["name"].get<std::string>().substr(0, 223);
  return {{"apiVersion", "apps/v1"},
          {"kind", "ControllerRevision"},
          {"metadata",
           {{"name", prefix + "-" + hash},
            {"namespace", set["metadata"]["namespace"]},
            {"labels", labels},
            {"ownerReferences", {controller_ref(set)}}}},
          {"data", data},
          {"revision", revision}};
}

bool equal_revision(const json& a, const json& b) {
  return semantic_equal(a.value("data", json()), b.value("data", json()));
}

void sort_revisions(std::vector<json>& revisions) {
  std::stable_sort(revisions.begin(), revisions.end(), [](const json& a, const json& b) {
    int64_t ra = a.value("revision", int64_t{0}), rb = b.value("revision", int64_t{0});
    if (ra != rb) return ra < rb;
    std::string ta = a["metadata"].value("creationTimestamp", "");
    std::string tb = b["metadata"].value("creationTimestamp", "");
    if (ta != tb) return ta < tb;
    return a["metadata"].value("name", "") < b["metadata"].value("name", "");
  });
}

json apply_revision(const json& set, const json& revision) {
  json out = set;
  json tmpl = revision["data"]["spec"]["template"];
  tmpl.erase("$patch");
  out["spec"]["template"] = tmpl;
  return out;
}

int start_ordinal(const json& set) {
  return set["spec"].value("ordinals", json::object()).value("start", 0);
}

int ordinal_of(const json& set, const json& pod) {
  std::string name = pod["metadata"].value("name", "");
  std::string prefix = set["metadata"]["name"].get<std::string>() + "-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  std::string digits = name.substr(prefix.size());
  if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::atoi(digits.c_str());
}

std::string pod_revision(const json& pod) {
  return pod["metadata"].value("labels", json::object()).value(kRevisionLabel, "");
}

bool created(const json& pod) { return !pod_phase(pod).empty(); }

json new_pod(const json& set, int ordinal) {
  std::string name = set["metadata"]["name"].get<std::string>() + "-" + std::to_string(ordinal);
  json pod = pod_from_template(set, set["spec"]["template"], set["metadata"]["namespace"]);
  pod["metadata"]["name"] = name;
  auto& labels = pod["metadata"]["labels"];
  labels[kPodNameLabel] = name;
  labels[kPodIndexLabel] = std::to_string(ordinal);
  pod["spec"]["hostname"] = name;
  if (set["spec"].contains("serviceName")) pod["spec"]["subdomain"] = set["spec"]["serviceName"];
  return pod;
}

json new_versioned_pod(const json& current_set, const json& update_set,
                       const std::string& current_revision, const std::string& update_revision,
                       int ordinal) {
  const json& strategy = current_set["spec"].value("updateStrategy", json::object());
  bool rolling = strategy.value("type", "RollingUpdate") == "RollingUpdate";
  bool has_rolling = strategy.contains("rollingUpdate") && strategy["rollingUpdate"].is_object();
  int partition = has_rolling ? strategy["rollingUpdate"].value("partition", 0) : 0;
  // Go's precedence: (rolling && no rollingUpdate && below currentReplicas) || (rollingUpdate
  // set && below the partition).
  bool current = (rolling && !has_rolling && ordinal < status_int(current_set, "currentReplicas")) ||
                 (has_rolling && ordinal < partition);
  json pod = new_pod(current ? current_set : update_set, ordinal);
  pod["metadata"]["labels"][kRevisionLabel] = current ? current_revision : update_revision;
  return pod;
}

bool unavailable(const json& pod, int min_ready, SysTime now) {
  bool healthy = pod_running_and_ready(pod) && !terminating(pod);
  return !healthy || !pod_available(pod, min_ready, now);
}

void count_replicas(json& status, const std::vector<json>& pods, int min_ready,
                    const std::string& current_revision, const std::string& update_revision,
                    SysTime now) {
  int replicas = 0, ready = 0, available = 0, current = 0, updated = 0;
  for (const auto& pod : pods) {
    if (created(pod)) ++replicas;
    if (pod_running_and_ready(pod)) {
      ++ready;
      if (pod_available(pod, min_ready, now)) ++available;
    }
    if (created(pod) && !terminating(pod)) {
      if (pod_revision(pod) == current_revision) ++current;
      if (pod_revision(pod) == update_revision) ++updated;
    }
  }
  status["replicas"] = replicas;
  status["readyReplicas"] = ready;
  status["availableReplicas"] = available;
  status["currentReplicas"] = current;
  status["updatedReplicas"] = updated;
}

void complete_rolling_update(const json& set, json& status) {
  const json& strategy = set["spec"].value("updateStrategy", json::object());
  if (strategy.value("type", "RollingUpdate") == "RollingUpdate" &&
      status["updatedReplicas"] == status["replicas"] &&
      status["readyReplicas"] == status["replicas"]) {
    status["currentReplicas"] = status["updatedReplicas"];
    status["currentRevision"] = status["updateRevision"];
  }
}

json status_json(const json& status) {
  json st = status;
  for (const char* f : {"readyReplicas", "currentReplicas", "updatedReplicas"}) {
    if (st.value(f, 0) == 0) st.erase(f);
  }
  for (const char* f : {"currentRevision", "updateRevision"}) {
    if (st.value(f, "").empty()) st.erase(f);
  }
  return st;
}

}  // namespace lpk::kubesim::sts
