// StatefulSet controller, after k/k pkg/controller/statefulset/stateful_set_control.go:
// ControllerRevisions for the current and update revisions (a revert reuses the old one),
// pods <name>-<ordinal> made at the revision their ordinal and the partition call for,
// OrderedReady (one pod at a time, each waiting for its predecessors to be Running and
// Ready, which also blocks a rollout behind a pod that never gets ready) or Parallel,
// RollingUpdate from the highest ordinal down to the partition, OnDelete, scale-down from
// the top, terminal pods replaced, history truncation, and the status kubectl reads.

#include <algorithm>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/controllers/statefulset_util.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim::sts {

namespace {

const EventSource kSource{"statefulset-controller", ""};
const ResourceType& kRevisions() { return resource_by_plural("controllerrevisions"); }
const ResourceType& kPods() { return resource_by_plural("pods"); }
std::string name_of(const json& o) { return o["metadata"].value("name", ""); }

class StatefulSetSync {
 public:
  StatefulSetSync(Rest& rest, EventRecorder& events, json set)
      : rest_(rest), events_(events), set_(std::move(set)) {}
  void run();

 private:
  void find_revisions();
  json create_revision(json candidate);
  void build_replicas();
  bool process_replica(size_t i);
  bool process_condemned(size_t i, const std::string& first_unavailable);
  void rolling_update();
  bool create_pod(json& pod);
  bool delete_pod(const json& pod);
  void write_status();
  void truncate_history();
  int min_ready() const { return set_["spec"].value("minReadySeconds", 0); }

  Rest& rest_;
  EventRecorder& events_;
  json set_;
  std::vector<json> pods_, revisions_, replicas_, condemned_;
  json current_, update_, current_set_, update_set_, status_;
  int collisions_ = 0;
  bool monotonic_ = true;
  bool failed_ = false;  // a create or delete failed: end the pass, as an error does
};

void StatefulSetSync::run() {
  pods_ = owned(rest_, "pods", set_);
  revisions_ = owned(rest_, "controllerrevisions", set_);
  sort_revisions(revisions_);
  find_revisions();
  current_set_ = apply_revision(set_, current_);
  update_set_ = apply_revision(set_, update_);
  status_ = {{"observedGeneration", set_["metadata"]["generation"]},
             {"currentRevision", name_of(current_)},
             {"updateRevision", name_of(update_)},
             {"collisionCount", collisions_}};
  auto now = std::chrono::system_clock::now();
  count_replicas(status_, pods_, min_ready(), name_of(current_), name_of(update_), now);
  build_replicas();
  monotonic_ = set_["spec"].value("podManagementPolicy", "OrderedReady") != "Parallel";
  bool exit = false;
  for (size_t i = 0; i < replicas_.size() && !exit; ++i) {
    exit = (process_replica(i) && monotonic_) || failed_;
  }
  // The first unavailable pod, among the replicas and then the condemned ones.
  std::string first;
  for (const auto& p : replicas_) {
    if (first.empty() && unavailable(p, min_ready(), now)) first = name_of(p);
  }
  for (auto it = condemned_.rbegin(); it != condemned_.rend() && first.empty(); ++it) {
    if (unavailable(*it, min_ready(), now)) first = name_of(*it);
  }
  for (size_t i = 0; i < condemned_.size() && !exit; ++i) {
    exit = (process_condemned(i, first) && monotonic_) || failed_;
  }
  std::vector<json> all = replicas_;
  all.insert(all.end(), condemned_.begin(), condemned_.end());
  count_replicas(status_, all, min_ready(), name_of(current_), name_of(update_), now);
  const json& strategy = set_["spec"].value("updateStrategy", json::object());
  if (!exit && strategy.value("type", "RollingUpdate") == "RollingUpdate") rolling_update();
  write_status();
  truncate_history();
}

// getStatefulSetRevisions: the update revision is the set's template now (an older equal
// revision is brought forward, as a revert does); the current one is status.currentRevision.
void StatefulSetSync::find_revisions() {
  collisions_ = set_.value("status", json::object()).value("collisionCount", 0);
  int64_t next = revisions_.empty() ? 1 : revisions_.back().value("revision", int64_t{0}) + 1;
  json candidate = new_revision(set_, next, collisions_);
  std::vector<json> equal;
  for (const auto& r : revisions_) {
    if (equal_revision(r, candidate)) equal.push_back(r);
  }
  if (!equal.empty() && name_of(revisions_.back()) == name_of(equal.back())) {
    update_ = revisions_.back();
  } else if (!equal.empty()) {
    json r = equal.back();
    r["revision"] = next;
    r["metadata"].erase("resourceVersion");
    update_ = rest_.update_object(kRevisions(), r);
  } else {
    update_ = create_revision(candidate);
  }
  std::string current = set_.value("status", json::object()).value("currentRevision", "");
  current_ = update_;
  for (const auto& r : revisions_) {
    if (name_of(r) == current) current_ = r;
  }
}

json StatefulSetSync::create_revision(json candidate) {
  for (;;) {
    try {
      return rest_.create_object(kRevisions(), candidate);
    } catch (const ApiError& e) {
      auto cur = rest_.store().get("controllerrevisions", set_["metadata"]["namespace"],
                                   name_of(candidate));
      if (e.code() != 409 || !cur) throw;
      if (equal_revision(*cur, candidate)) return *cur;
      candidate = new_revision(set_, candidate["revision"].get<int64_t>(), ++collisions_);
    }
  }
}

void StatefulSetSync::build_replicas() {
  int start = start_ordinal(set_), count = spec_replicas(set_);
  replicas_.assign(count, json());
  for (const auto& pod : pods_) {
    int ord = ordinal_of(set_, pod);
    if (ord >= start && ord < start + count)
      replicas_[ord - start] = pod;
    else if (ord >= 0)
      condemned_.push_back(pod);
  }
  for (int i = 0; i < count; ++i) {
    if (replicas_[i].is_null()) {
      replicas_[i] = new_versioned_pod(current_set_, update_set_, name_of(current_),
                                       name_of(update_), start + i);
    }
  }
  std::sort(condemned_.begin(), condemned_.end(), [this](const json& a, const json& b) {
    return ordinal_of(set_, a) > ordinal_of(set_, b);
  });
}

bool StatefulSetSync::process_replica(size_t i) {
  json& pod = replicas_[i];
  auto now = std::chrono::system_clock::now();
  // A Failed or Succeeded pod (evicted, say) is deleted and made again on a later pass.
  if (pod_terminal(pod)) {
    if (!terminating(pod)) delete_pod(pod);
    return true;
  }
  if (!created(pod)) {
    if (!create_pod(pod)) return true;
    if (monotonic_) return true;
  }
  if (!monotonic_) return false;
  return terminating(pod) || !pod_running_and_ready(pod) || !pod_available(pod, min_ready(), now);
}

bool StatefulSetSync::process_condemned(size_t i, const std::string& first_unavailable) {
  const json& pod = condemned_[i];
  if (terminating(pod)) return monotonic_;
  bool first = name_of(pod) == first_unavailable;
  auto now = std::chrono::system_clock::now();
  if (monotonic_ && !first &&
      (!pod_running_and_ready(pod) || !pod_available(pod, min_ready(), now))) {
    return true;
  }
  delete_pod(pod);
  return true;
}

// Deletes the highest-ordinal pod (down to the partition) not at the update revision, one
// at a time, each once the pods above it are available again.
void StatefulSetSync::rolling_update() {
  const json& ru = set_["spec"]["updateStrategy"].value("rollingUpdate", json::object());
  int update_min = ru.value("partition", 0);
  auto now = std::chrono::system_clock::now();
  for (int target = int(replicas_.size()) - 1; target >= update_min; --target) {
    const json& pod = replicas_[target];
    if (pod_revision(pod) != name_of(update_) && !terminating(pod)) {
      if (delete_pod(pod)) status_["currentReplicas"] = status_.value("currentReplicas", 0) - 1;
      return;
    }
    if (unavailable(pod, min_ready(), now)) return;
  }
}

bool StatefulSetSync::create_pod(json& pod) {
  std::string what = "create Pod " + name_of(pod) + " in StatefulSet " + name_of(set_);
  try {
    pod = rest_.create_object(kPods(), pod);
    events_.record(set_, "Normal", "SuccessfulCreate", what + " successful", kSource);
    return true;
  } catch (const ApiError& e) {
    events_.record(set_, "Warning", "FailedCreate", what + " failed error: " + e.what(), kSource);
    failed_ = true;
    return false;
  }
}

bool StatefulSetSync::delete_pod(const json& pod) {
  std::string what = "delete Pod " + name_of(pod) + " in StatefulSet " + name_of(set_);
  try {
    rest_.remove({&kPods(), set_["metadata"]["namespace"], name_of(pod), ""}, false);
    events_.record(set_, "Normal", "SuccessfulDelete", what + " successful", kSource);
    return true;
  } catch (const ApiError& e) {
    if (e.code() == 404) return false;
    events_.record(set_, "Warning", "FailedDelete", what + " failed error: " + e.what(), kSource);
    failed_ = true;
    return false;
  }
}

void StatefulSetSync::write_status() {
  complete_rolling_update(set_, status_);
  json st = status_json(status_);
  if (set_.value("status", json::object()) == st) return;
  json copy = set_;
  copy["status"] = st;
  copy["metadata"].erase("resourceVersion");
  rest_.update_object(resource_by_plural("statefulsets"), copy, true);
}

// Keeps revisionHistoryLimit revisions besides the live ones (current, update, and those
// pods still run), deleting the oldest.
void StatefulSetSync::truncate_history() {
  std::vector<std::string> live = {name_of(current_), name_of(update_)};
  for (const auto& p : pods_) live.push_back(pod_revision(p));
  std::vector<json> history;
  for (const auto& r : revisions_) {
    if (std::find(live.begin(), live.end(), name_of(r)) == live.end()) history.push_back(r);
  }
  int limit = set_["spec"].value("revisionHistoryLimit", 10);
  for (int i = 0; limit >= 0 && i < int(history.size()) - limit; ++i) {
    rest_.remove({&kRevisions(), set_["metadata"]["namespace"], name_of(history[i]), ""}, false);
  }
}

}  // namespace

}  // namespace lpk::kubesim::sts

namespace lpk::kubesim {

void reconcile_statefulsets(Rest& rest, EventRecorder& events) {
  each_object(rest.store().list("statefulsets"), [&](const json& s) {
    if (!terminating(s)) sts::StatefulSetSync(rest, events, s).run();
  });
}

}  // namespace lpk::kubesim
