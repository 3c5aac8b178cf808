// ReplicaSet controller: keeps spec.replicas live pods named <rs>-<random>, and reports
// replicas, readyReplicas and availableReplicas.

#include <algorithm>
#include <exception>
#include <random>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/events.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

namespace {

const EventSource kRsEvents{"replicaset-controller", ""};

std::string random_suffix() {
  static std::mt19937 rng{std::random_device{}()};
  static const char* kChars = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (int i = 0; i < 5; ++i) s += kChars[rng() % 27];
  return s;
}

void write_status(Rest& rest, json rs, const std::vector<json>& live) {
  int ready = int(std::count_if(live.begin(), live.end(), pod_ready));
  json st = {{"replicas", int(live.size())},
             {"fullyLabeledReplicas", int(live.size())},
             {"readyReplicas", ready},
             {"availableReplicas", ready},
             {"observedGeneration", rs["metadata"]["generation"]}};
  for (const char* f : {"fullyLabeledReplicas", "readyReplicas", "availableReplicas"}) {
    if (st[f] == 0) st.erase(f);
  }
  if (rs.value("status", json::object()) == st) return;
  rs["status"] = st;
  rs["metadata"].erase("resourceVersion");
  rest.update_object(resource_by_plural("replicasets"), rs, true);
}

void reconcile_one(Rest& rest, const json& rs) {
  std::vector<json> live;
  for (auto& p : owned(rest, "pods", rs)) {
    std::string phase = p.value("status", json::object()).value("phase", "");
    if (!terminating(p) && phase != "Failed" && phase != "Succeeded") live.push_back(p);
  }
  int want = rs["spec"].value("replicas", 1);
  std::string ns = rs["metadata"]["namespace"];
  std::string base = rs["metadata"]["name"].get<std::string>() + "-";
  while (int(live.size()) < want) {
    json pod = pod_from_template(rs, rs["spec"]["template"], base + random_suffix(), ns);
    try {
      live.push_back(rest.create_object(resource_by_plural("pods"), pod));
    } catch (const ApiError& e) {
      record_event(rest, rs, "Warning", "FailedCreate", std::string("Error creating: ") + e.what(),
                   kRsEvents);
      throw;  // the pass is retried, as the controller requeues the ReplicaSet
    }
    record_event(rest, rs, "Normal", "SuccessfulCreate",
                 "Created pod: " + live.back()["metadata"].value("name", ""), kRsEvents);
  }
  if (int(live.size()) > want) {
    // Remove unready pods first, then the youngest, as the ReplicaSet controller ranks them.
    std::stable_sort(live.begin(), live.end(), [](const json& a, const json& b) {
      if (pod_ready(a) != pod_ready(b)) return !pod_ready(a);
      return a["metadata"].value("creationTimestamp", "") >
             b["metadata"].value("creationTimestamp", "");
    });
    while (int(live.size()) > want) {
      Route r{&resource_by_plural("pods"), ns, live.front()["metadata"]["name"], ""};
      rest.remove(r, false);
      record_event(rest, rs, "Normal", "SuccessfulDelete", "Deleted pod: " + r.name, kRsEvents);
      live.erase(live.begin());
    }
  }
  write_status(rest, rs, live);
}

}  // namespace

void reconcile_replicasets(Rest& rest) {
  // One ReplicaSet that cannot create its pods must not hold up the others; the first
  // failure is rethrown after all of them so that the pass is retried.
  std::exception_ptr failed;
  for (const auto& rs : rest.store().list("replicasets")) {
    try {
      if (!terminating(rs)) reconcile_one(rest, rs);
    } catch (const ApiError&) {
      if (!failed) failed = std::current_exception();
    }
  }
  if (failed) std::rethrow_exception(failed);
}

}  // namespace lpk::kubesim
