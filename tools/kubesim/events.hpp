#pragma once
// Events as the components' recorders write them (client-go tools/record, core/v1): named
// `<object>.<hex unix nanoseconds>` in the object's namespace, with the involved object, a
// reason, a message and the source; a repeat of the same event (object, type, reason,
// message, source) bumps its count and lastTimestamp instead, as the EventCorrelator does.
// Recording never throws: a component's work does not fail for its event.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lpk::kubesim {

using json = nlohmann::json;
class Rest;

struct EventSource {
  std::string component;  // "replicaset-controller", "kubelet", "default-scheduler"...
  std::string host;       // the node, for the kubelet
};

/// Records an event of type "Normal" or "Warning" about obj (a stored object). field_path
/// names a part of it, as the kubelet's `spec.containers{main}`.
void record_event(Rest& rest, const json& obj, const std::string& type, const std::string& reason,
                  const std::string& message, const EventSource& source,
                  const std::string& field_path = "");

/// The Event fields a field selector may name (k/k pkg/apis/core/v1 conversion).
const std::vector<std::string>& event_selectable_fields();

}  // namespace lpk::kubesim
