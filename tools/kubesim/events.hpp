#pragma once
// core/v1 Events as client-go's EventRecorder writes them, for every component of kubesim
// that reports what it did: the controllers, the scheduler's binding and the kubelet. One
// Event per (object, fieldPath, type, reason, message, source), whose count and
// lastTimestamp grow when the same thing happens again (the EventCorrelator's aggregation),
// named <object>.<hex nanoseconds> in the object's namespace. Events expire an hour after
// their last update, as the apiserver's --event-ttl makes them. The cluster owns the one
// recorder and passes it by reference; single-threaded, like the store.

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tools/kubesim/rest.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

struct EventSource {
  std::string component;  // "kubelet", "default-scheduler", "deployment-controller"...
  std::string host;       // the node, for the kubelet; "" for controllers
};

class EventRecorder {
 public:
  explicit EventRecorder(Rest& rest, std::chrono::seconds ttl = std::chrono::hours(1));

  /// Records that `reason` happened to `object` (a stored object). type is "Normal" or
  /// "Warning"; field_path names a part of it ("spec.containers{api}"). Never throws: an
  /// event that cannot be written (its namespace is gone) is dropped, as client-go drops it.
  void record(const json& object, const std::string& type, const std::string& reason,
              const std::string& message, const EventSource& source,
              const std::string& field_path = "");

  /// Removes events whose last update is older than the TTL (at most once a minute).
  void expire();

 private:
  json make_event(const json& object, const std::string& type, const std::string& reason,
                  const std::string& message, const EventSource& source,
                  const std::string& field_path) const;

  Rest& rest_;
  std::chrono::seconds ttl_;
  std::map<std::string, std::pair<std::string, std::string>> seen_;  // key -> (ns, name)
  std::chrono::steady_clock::time_point last_expiry_{};
};

/// "spec.containers{name}": the fieldPath of a container's events.
std::string container_field_path(const std::string& container);

}  // namespace lpk::kubesim
