#pragma once
// Helpers the controllers share: ownership, pod states as k/k pkg/api/v1/pod and
// pkg/controller read them, semantic equality, template hashing, timestamps.

#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tools/kubesim/rest.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;
using SysTime = std::chrono::system_clock::time_point;

/// An ownerReference with controller=true pointing at owner.
json controller_ref(const json& owner);
bool owned_by(const json& obj, const std::string& uid);
/// Objects of a type in ns that owner controls.
std::vector<json> owned(Rest& rest, const std::string& plural, const json& owner);
/// The Ready condition is True (podutil.IsPodReady).
bool pod_ready(const json& pod);
bool terminating(const json& obj);
/// Phase Succeeded or Failed (podutil.IsPodTerminal).
bool pod_terminal(const json& pod);
/// Not terminal and not being deleted (controller.IsPodActive): what controllers count.
bool pod_active(const json& pod);
/// Phase Running and Ready (the StatefulSet controller's isRunningAndReady).
bool pod_running_and_ready(const json& pod);
/// Ready for at least min_ready seconds by now (podutil.IsPodAvailable).
bool pod_available(const json& pod, int min_ready, SysTime now);
std::string pod_phase(const json& pod);
/// The template's FNV-32a hash (of its semantic form, plus the collision count when there
/// is one), written in the consonant-and-digit alphabet Kubernetes uses for generated names.
std::string template_hash(const json& pod_template, int collision_count = 0);
std::string safe_encode(const std::string& s);
/// A pod built from a template for owner (GetPodFromTemplate): labels, annotations and
/// spec of the template, the owner's controller reference, no name.
json pod_from_template(const json& owner, const json& tmpl, const std::string& ns);
/// Resolves an int-or-percent (maxSurge "25%") against total; round_up for surge.
int int_or_percent(const json& v, int total, bool round_up);
/// spec.replicas, 1 when absent.
int spec_replicas(const json& obj);
/// An integer field of status, 0 when absent.
int status_int(const json& obj, const char* field);

/// The value with nulls, empty objects and empty arrays removed, recursively: equal
/// semantic forms are what apimachinery's Semantic.DeepEqual calls equal after decoding.
json semantic(const json& v);
bool semantic_equal(const json& a, const json& b);

/// Runs fn on each object; an error on one does not stop the others and the first is
/// rethrown at the end (the manager retries the pass), as a workqueue retries its key.
template <class F>
void each_object(const std::vector<json>& objects, F fn) {
  std::exception_ptr first;
  for (const auto& o : objects) {
    try {
      fn(o);
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

/// "2026-11-30T07:40:01Z" -> time; nullopt when unreadable.
std::optional<SysTime> parse_rfc3339(const std::string& s);
std::string format_rfc3339(SysTime t);

}  // namespace lpk::kubesim
