#include "tools/kubesim/controllers/deployment_util.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace lpk::kubesim::deploy {

namespace {

int64_t parse_int(const std::string& s, bool* ok) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  *ok = !s.empty() && end && *end == '\0';
  return v;
}

json& annotations_of(json& obj) {
  json& m = obj["metadata"];
  if (!m.contains("annotations") || !m["annotations"].is_object()) {
    m["annotations"] = json::object();
  }
  return m["annotations"];
}

bool copy_annotations(const json& d, json& rs) {
  bool changed = false;
  json& to = annotations_of(rs);
  const json from = d["metadata"].value("annotations", json::object());  // items() needs it alive
  for (const auto& [k, v] : from.items()) {
    if (skip_copy_annotation(k) || (to.contains(k) && to[k] == v)) continue;
    to[k] = v;
    changed = true;
  }
  return changed;
}

// Appends old to the revision-history list, dropping the oldest entries over the limit.
void append_history(json& ann, const std::string& old) {
  std::string history = ann.value(kRevisionHistory, "");
  if (history.empty()) {
    ann[kRevisionHistory] = old;
    return;
  }
  std::vector<std::string> revs;
  for (size_t pos = 0;;) {
    size_t comma = history.find(',', pos);
    revs.push_back(history.substr(pos, comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  size_t total = history.size() + old.size() + 1, start = 0;
  while (total > kMaxRevHistoryChars && start < revs.size()) total -= revs[start++].size() + 1;
  if (total > kMaxRevHistoryChars) return;
  std::string out;
  for (size_t i = start; i < revs.size(); ++i) out += revs[i] + ",";
  ann[kRevisionHistory] = out + old;
}

int replicas_of(const json* rs) { return rs && !rs->is_null() ? spec_replicas(*rs) : 0; }

}  // namespace

bool skip_copy_annotation(const std::string& key) {
  static const std::set<std::string> kSkip = {
      "kubectl.kubernetes.io/last-applied-configuration",
      kRevision,
      kRevisionHistory,
      kDesiredReplicas,
      kMaxReplicas,
      "deprecated.deployment.rollback.to"};
  return kSkip.count(key) > 0;
}

bool set_replicas_annotations(json& rs, int desired, int max) {
  json& ann = annotations_of(rs);
  bool changed = false;
  for (const auto& [key, value] : {std::pair<const char*, int>{kDesiredReplicas, desired},
                                   {kMaxReplicas, max}}) {
    std::string v = std::to_string(value);
    if (ann.value(key, "") != v) {
      ann[key] = v;
      changed = true;
    }
  }
  return changed;
}

bool replicas_annotations_need_update(const json& rs, int desired, int max) {
  const json& ann = rs["metadata"].value("annotations", json::object());
  return ann.value(kDesiredReplicas, "") != std::to_string(desired) ||
         ann.value(kMaxReplicas, "") != std::to_string(max);
}

bool set_new_rs_annotations(const json& d, json& rs, int64_t new_revision, bool exists) {
  bool changed = copy_annotations(d, rs);
  json& ann = annotations_of(rs);
  bool had = ann.contains(kRevision);
  std::string old = ann.value(kRevision, "");
  bool ok = true;
  int64_t old_int = old.empty() ? 0 : parse_int(old, &ok);
  if (!ok) return false;
  if (old_int < new_revision) {
    ann[kRevision] = std::to_string(new_revision);
    changed = true;
    // A set that had a revision and gets a newer one is being rolled back to.
    if (had) append_history(ann, old);
  }
  if (!exists && set_replicas_annotations(rs, spec_replicas(d), spec_replicas(d) + max_surge(d))) {
    changed = true;
  }
  return changed;
}

int64_t revision_of(const json& obj) {
  bool ok = true;
  std::string v = obj["metadata"].value("annotations", json::object()).value(kRevision, "");
  int64_t r = v.empty() ? 0 : parse_int(v, &ok);
  return ok ? r : 0;
}

int64_t max_revision(const std::vector<json>& sets) {
  int64_t m = 0;
  for (const auto& rs : sets) m = std::max(m, revision_of(rs));
  return m;
}

bool is_rolling_update(const json& d) {
  return d["spec"].value("strategy", json::object()).value("type", "RollingUpdate") ==
         "RollingUpdate";
}

bool has_progress_deadline(const json& d) {
  const json& p = d["spec"].value("progressDeadlineSeconds", json());
  return p.is_number_integer() && p.get<int64_t>() != 2147483647;
}

std::pair<int, int> resolve_fenceposts(const json& d) {
  json ru = d["spec"].value("strategy", json::object()).value("rollingUpdate", json::object());
  int desired = spec_replicas(d);
  int surge = int_or_percent(ru.value("maxSurge", json(0)), desired, true);
  int unavailable = int_or_percent(ru.value("maxUnavailable", json(0)), desired, false);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  return {surge, unavailable};
}

int max_surge(const json& d) { return is_rolling_update(d) ? resolve_fenceposts(d).first : 0; }

int max_unavailable(const json& d) {
  if (!is_rolling_update(d) || spec_replicas(d) == 0) return 0;
  return std::min(resolve_fenceposts(d).second, spec_replicas(d));
}

bool equal_ignore_hash(const json& template1, const json& template2) {
  json a = template1, b = template2;
  for (json* t : {&a, &b}) {
    if (t->contains("metadata") && (*t)["metadata"].contains("labels")) {
      (*t)["metadata"]["labels"].erase(kHashLabel);
    }
  }
  return semantic_equal(a, b);
}

void sort_by_creation(std::vector<json>& sets) {
  std::stable_sort(sets.begin(), sets.end(), [](const json& a, const json& b) {
    std::string ta = a["metadata"].value("creationTimestamp", "");
    std::string tb = b["metadata"].value("creationTimestamp", "");
    if (ta != tb) return ta < tb;
    return a["metadata"].value("name", "") < b["metadata"].value("name", "");
  });
}

int find_new_replicaset(const json& d, std::vector<json>& sets) {
  sort_by_creation(sets);
  for (size_t i = 0; i < sets.size(); ++i) {
    if (equal_ignore_hash(sets[i]["spec"]["template"], d["spec"]["template"])) return int(i);
  }
  return -1;
}

json find_active_or_latest(const json& new_rs, std::vector<json> old) {
  if (new_rs.is_null() && old.empty()) return json();
  sort_by_creation(old);
  std::reverse(old.begin(), old.end());
  std::vector<json> active;
  for (const auto& rs : old) {
    if (spec_replicas(rs) > 0) active.push_back(rs);
  }
  if (!new_rs.is_null() && spec_replicas(new_rs) > 0) active.push_back(new_rs);
  if (active.size() == 1) return active[0];
  if (!active.empty()) return json();
  return new_rs.is_null() ? old[0] : new_rs;
}

bool is_saturated(const json& d, const json& rs) {
  if (rs.is_null()) return false;
  bool ok = true;
  std::string desired =
      rs["metadata"].value("annotations", json::object()).value(kDesiredReplicas, "");
  int64_t want = parse_int(desired, &ok);
  int replicas = spec_replicas(d);
  return ok && spec_replicas(rs) == replicas && want == replicas &&
         status_int(rs, "availableReplicas") == replicas;
}

int new_rs_new_replicas(const json& d, const std::vector<json>& all, const json& new_rs) {
  int replicas = spec_replicas(d);
  if (!is_rolling_update(d)) return replicas;
  json ru = d["spec"].value("strategy", json::object()).value("rollingUpdate", json::object());
  int surge = int_or_percent(ru.value("maxSurge", json(0)), replicas, true);
  int current = 0;
  for (const auto& rs : all) current += replicas_of(&rs);
  int max_total = replicas + surge;
  if (current >= max_total) return spec_replicas(new_rs);
  int up = std::min(max_total - current, replicas - spec_replicas(new_rs));
  return spec_replicas(new_rs) + up;
}

int get_proportion(const json& rs, const json& d, int to_add, int added) {
  if (rs.is_null() || spec_replicas(rs) == 0 || to_add == 0 || to_add == added) return 0;
  int fraction;
  if (spec_replicas(d) == 0) {
    fraction = -spec_replicas(rs);
  } else {
    int d_replicas = spec_replicas(d) + max_surge(d);
    bool ok = true;
    std::string max =
        rs["metadata"].value("annotations", json::object()).value(kMaxReplicas, "");
    int64_t annotated = parse_int(max, &ok);
    if (!ok) annotated = status_int(d, "replicas");
    if (annotated == 0) return 0;
    double size = double(spec_replicas(rs)) * d_replicas / double(annotated);
    fraction = int(std::lround(size)) - spec_replicas(rs);
  }
  int allowed = to_add - added;
  return to_add > 0 ? std::min(fraction, allowed) : std::max(fraction, allowed);
}

json new_condition(const std::string& type, const std::string& status, const std::string& reason,
                   const std::string& message, const std::string& now) {
  return {{"type", type},           {"status", status},  {"lastUpdateTime", now},
          {"lastTransitionTime", now}, {"reason", reason}, {"message", message}};
}

const json& status_of(const json& obj) {
  static const json kEmpty = json::object();
  return obj.is_object() && obj.contains("status") ? obj["status"] : kEmpty;
}

const json* get_condition(const json& status, const std::string& type) {
  if (!status.is_object() || !status.contains("conditions")) return nullptr;
  for (const auto& c : status["conditions"]) {
    if (c.value("type", "") == type) return &c;
  }
  return nullptr;
}

void remove_condition(json& status, const std::string& type) {
  if (!status.contains("conditions")) return;
  json kept = json::array();
  for (const auto& c : status["conditions"]) {
    if (c.value("type", "") != type) kept.push_back(c);
  }
  if (kept.empty())
    status.erase("conditions");
  else
    status["conditions"] = kept;
}

void set_condition(json& status, json condition) {
  std::string type = condition["type"];
  if (const json* cur = get_condition(status, type)) {
    if ((*cur)["status"] == condition["status"] && (*cur)["reason"] == condition["reason"]) return;
    if ((*cur)["status"] == condition["status"]) {
      condition["lastTransitionTime"] = (*cur)["lastTransitionTime"];
    }
  }
  remove_condition(status, type);
  status["conditions"].push_back(std::move(condition));
}

}  // namespace lpk::kubesim::deploy
