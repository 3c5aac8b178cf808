// Job controller, after k/k pkg/controller/job (syncJob, manageJob) and the TTL-after-finished
// controller: up to spec.parallelism active pods at a time, created from the template with
// generateName <job>-, until spec.completions pods have succeeded (condition Complete) or more
// than spec.backoffLimit have failed (condition Failed, reason BackoffLimitExceeded; the active
// pods are deleted). status counts active, ready, succeeded and failed pods and records
// startTime and completionTime. A finished Job with spec.ttlSecondsAfterFinished is deleted,
// with its pods, that many seconds after it finished.

#include <algorithm>
#include <optional>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

// Named, not anonymous: the unity build compiles this file with the other controllers.
namespace job_controller {

const EventSource kSource{"job-controller", ""};

std::optional<json> finished_condition(const json& job) {
  const json::json_pointer conditions("/status/conditions");
  if (!job.contains(conditions) || !job.at(conditions).is_array()) return std::nullopt;
  for (const auto& c : job.at(conditions)) {
    std::string type = c.value("type", "");
    if ((type == "Complete" || type == "Failed") && c.value("status", "") == "True") return c;
  }
  return std::nullopt;
}

struct PodCounts {
  std::vector<json> active;
  int ready = 0, succeeded = 0, failed = 0;
};

PodCounts count_pods(Rest& rest, const json& job) {
  PodCounts counts;
  for (auto& pod : owned(rest, "pods", job)) {
    std::string phase = pod_phase(pod);
    if (phase == "Succeeded") ++counts.succeeded;
    if (phase == "Failed") ++counts.failed;
    if (!pod_active(pod)) continue;
    counts.ready += pod_ready(pod) ? 1 : 0;
    counts.active.push_back(std::move(pod));
  }
  return counts;
}

void create_pods(Rest& rest, EventRecorder& events, const json& job, int count) {
  for (int i = 0; i < count; ++i) {
    json pod = pod_from_template(job, job["spec"]["template"], job["metadata"]["namespace"]);
    pod["metadata"]["generateName"] = job["metadata"]["name"].get<std::string>() + "-";
    try {
      json made = rest.create_object(resource_by_plural("pods"), pod);
      events.record(job, "Normal", "SuccessfulCreate",
                    "Created pod: " + made["metadata"]["name"].get<std::string>(), kSource);
    } catch (const ApiError& e) {
      events.record(job, "Warning", "FailedCreate", std::string("Error creating: ") + e.what(),
                    kSource);
      throw;  // the manager retries the pass
    }
  }
}

void delete_pods(Rest& rest, const json& job, const std::vector<json>& pods) {
  for (const auto& pod : pods) {
    try {
      rest.remove({&resource_by_plural("pods"), job["metadata"]["namespace"],
                   pod["metadata"]["name"], ""},
                  false);
    } catch (const ApiError& e) {
      if (e.code() != 404) throw;
    }
  }
}

json finish(const json& status, const char* type, const char* reason, const std::string& message) {
  json st = status;
  std::string now = now_rfc3339();
  st["conditions"].push_back({{"type", type},
                              {"status", "True"},
                              {"lastProbeTime", now},
                              {"lastTransitionTime", now},
                              {"reason", reason},
                              {"message", message}});
  if (std::string(type) == "Complete") st["completionTime"] = now;
  return st;
}

// Deletes a finished Job whose time to live is over; true when it did.
bool expire(Rest& rest, const json& job, const json& finished) {
  json ttl = job["spec"].value("ttlSecondsAfterFinished", json());
  if (!ttl.is_number_integer()) return false;
  auto at = parse_rfc3339(finished.value("lastTransitionTime", ""));
  if (!at || std::chrono::system_clock::now() < *at + std::chrono::seconds(ttl.get<int>())) {
    return false;
  }
  rest.remove({&resource_by_plural("jobs"), job["metadata"]["namespace"], job["metadata"]["name"],
               ""},
              false);
  return true;
}

void reconcile_one(Rest& rest, EventRecorder& events, const json& job) {
  if (auto finished = finished_condition(job)) {
    expire(rest, job, *finished);
    return;
  }
  const json& spec = job["spec"];
  int completions = spec.value("completions", 1), parallelism = spec.value("parallelism", 1);
  auto counts = count_pods(rest, job);
  json st = job.value("status", json::object());
  if (!st.contains("startTime")) st["startTime"] = now_rfc3339();
  if (counts.failed > spec.value("backoffLimit", 6)) {
    delete_pods(rest, job, counts.active);
    counts.active.clear();
    st = finish(st, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit");
    events.record(job, "Warning", "BackoffLimitExceeded",
                  "Job has reached the specified backoff limit", kSource);
  } else if (counts.succeeded >= completions) {
    delete_pods(rest, job, counts.active);
    counts.active.clear();
    st = finish(st, "Complete", "CompletionsReached", "Reached expected number of succeeded pods");
    events.record(job, "Normal", "Completed", "Job completed", kSource);
  } else if (!spec.value("suspend", false)) {
    int wanted = std::min(parallelism, completions - counts.succeeded);
    int missing = wanted - int(counts.active.size());
    if (missing > 0) {
      create_pods(rest, events, job, missing);
      counts = count_pods(rest, job);
    }
  }
  st["active"] = int(counts.active.size());
  st["ready"] = counts.ready;
  st["succeeded"] = counts.succeeded;
  st["failed"] = counts.failed;
  for (const char* f : {"active", "succeeded", "failed"}) {
    if (st[f] == 0) st.erase(f);  // omitempty, as the API writes them
  }
  if (job.value("status", json::object()) == st) return;
  json copy = job;
  copy["status"] = st;
  copy["metadata"].erase("resourceVersion");
  rest.update_object(resource_by_plural("jobs"), copy, true);
}

}  // namespace job_controller

void reconcile_jobs(Rest& rest, EventRecorder& events) {
  each_object(rest.store().list("jobs"), [&](const json& job) {
    if (!terminating(job)) job_controller::reconcile_one(rest, events, job);
  });
}

}  // namespace lpk::kubesim
