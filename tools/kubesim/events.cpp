#include "tools/kubesim/events.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include "tools/kubesim/rest.hpp"

namespace lpk::kubesim {

namespace {

json involved(const json& obj, const std::string& field_path) {
  const json& m = obj["metadata"];
  json ref = {{"kind", obj.value("kind", "")},
              {"name", m.value("name", "")},
              {"uid", m.value("uid", "")},
              {"apiVersion", obj.value("apiVersion", "")},
              {"resourceVersion", m.value("resourceVersion", "")}};
  if (!m.value("namespace", "").empty()) ref["namespace"] = m["namespace"];
  if (!field_path.empty()) ref["fieldPath"] = field_path;
  return ref;
}

bool same_event(const json& e, const json& ref, const std::string& type, const std::string& reason,
                const std::string& message, const EventSource& source) {
  const json& io = e.value("involvedObject", json::object());
  return io.value("uid", "") == ref.value("uid", "") &&
         io.value("fieldPath", "") == ref.value("fieldPath", "") && e.value("type", "") == type &&
         e.value("reason", "") == reason && e.value("message", "") == message &&
         e.value("source", json::object()).value("component", "") == source.component;
}

}  // namespace

void record_event(Rest& rest, const json& obj, const std::string& type, const std::string& reason,
                  const std::string& message, const EventSource& source,
                  const std::string& field_path) {
  const ResourceType& t = resource_by_plural("events");
  json ref = involved(obj, field_path);
  std::string ns = ref.value("namespace", "default");
  std::string now = now_rfc3339();
  try {
    for (auto& e : rest.store().list("events", ns)) {
      if (!same_event(e, ref, type, reason, message, source)) continue;
      e["count"] = e.value("count", 1) + 1;
      e["lastTimestamp"] = now;
      e["metadata"].erase("resourceVersion");
      rest.update_object(t, e);
      return;
    }
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    char hex[24];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(nanos));
    json src = {{"component", source.component}};
    if (!source.host.empty()) src["host"] = source.host;
    rest.create_object(
        t, {{"apiVersion", "v1"},
            {"kind", "Event"},
            {"metadata", {{"name", ref.value("name", "") + "." + hex}, {"namespace", ns}}},
            {"involvedObject", ref},
            {"reason", reason},
            {"message", message},
            {"source", src},
            {"firstTimestamp", now},
            {"lastTimestamp", now},
            {"count", 1},
            {"type", type},
            {"eventTime", nullptr},
            {"reportingComponent", source.component},
            {"reportingInstance", source.host}});
  } catch (const std::exception& e) {
    spdlog::debug("kubesim: event {} for {}: {}", reason, ref.value("name", ""), e.what());
  }
}

const std::vector<std::string>& event_selectable_fields() {
  static const std::vector<std::string> kFields = {"involvedObject.kind",
                                                   "involvedObject.namespace",
                                                   "involvedObject.name",
                                                   "involvedObject.uid",
                                                   "involvedObject.apiVersion",
                                                   "involvedObject.resourceVersion",
                                                   "involvedObject.fieldPath",
                                                   "reason",
                                                   "reportingComponent",
                                                   "source",
                                                   "type"};
  return kFields;
}

}  // namespace lpk::kubesim
