#include "tools/kubesim/events.hpp"

#include <spdlog/spdlog.h>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

namespace {

const ResourceType& kEvents() { return resource_by_plural("events"); }

std::string hex_nanos() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(ns));
  return buf;
}

}  // namespace

std::string container_field_path(const std::string& container) {
  return "spec.containers{" + container + "}";
}

EventRecorder::EventRecorder(Rest& rest, std::chrono::seconds ttl) : rest_(rest), ttl_(ttl) {}

json EventRecorder::make_event(const json& object, const std::string& type,
                               const std::string& reason, const std::string& message,
                               const EventSource& source, const std::string& field_path) const {
  const json& m = object["metadata"];
  std::string ns = m.value("namespace", "");
  json involved = {{"kind", object.value("kind", "")},
                   {"name", m.value("name", "")},
                   {"uid", m.value("uid", "")},
                   {"apiVersion", object.value("apiVersion", "")},
                   {"resourceVersion", m.value("resourceVersion", "")}};
  if (!ns.empty()) involved["namespace"] = ns;
  if (!field_path.empty()) involved["fieldPath"] = field_path;
  json src = {{"component", source.component}};
  if (!source.host.empty()) src["host"] = source.host;
  std::string now = now_rfc3339();
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata",
           {{"name", m.value("name", "") + "." + hex_nanos()},
            {"namespace", ns.empty() ? "default" : ns}}},
          {"involvedObject", involved},
          {"reason", reason},
          {"message", message},
          {"source", src},
          {"firstTimestamp", now},
          {"lastTimestamp", now},
          {"count", 1},
          {"type", type},
          {"eventTime", nullptr},
          {"reportingComponent", source.component},
          {"reportingInstance", source.host}};
}

void EventRecorder::record(const json& object, const std::string& type, const std::string& reason,
                           const std::string& message, const EventSource& source,
                           const std::string& field_path) {
  try {
    expire();
    const json& m = object["metadata"];
    std::string key = m.value("uid", "") + "\n" + field_path + "\n" + type + "\n" + reason + "\n" +
                      message + "\n" + source.component + "\n" + source.host;
    if (auto it = seen_.find(key); it != seen_.end()) {
      if (auto ev = rest_.store().get("events", it->second.first, it->second.second)) {
        (*ev)["count"] = ev->value("count", 1) + 1;
        (*ev)["lastTimestamp"] = now_rfc3339();
        (*ev)["involvedObject"]["resourceVersion"] = m.value("resourceVersion", "");
        (*ev)["metadata"].erase("resourceVersion");
        rest_.update_object(kEvents(), *ev);
        return;
      }
    }
    json ev = make_event(object, type, reason, message, source, field_path);
    std::string ns = ev["metadata"]["namespace"], name = ev["metadata"]["name"];
    while (rest_.store().get("events", ns, name)) name += "0";
    ev["metadata"]["name"] = name;
    rest_.create_object(kEvents(), ev);
    seen_[key] = {ns, name};
  } catch (const std::exception& e) {
    spdlog::debug("kubesim: event {} for {} dropped: {}", reason,
                  object["metadata"].value("name", ""), e.what());
  }
}

void EventRecorder::expire() {
  auto now = std::chrono::steady_clock::now();
  if (now - last_expiry_ < std::chrono::minutes(1)) return;
  last_expiry_ = now;
  auto oldest = std::chrono::system_clock::now() - ttl_;
  for (const auto& ev : rest_.store().list("events")) {
    auto last = parse_rfc3339(ev.value("lastTimestamp", ""));
    if (!last || *last >= oldest) continue;
    rest_.store().remove("events", ev["metadata"]["namespace"], ev["metadata"]["name"]);
  }
  for (auto it = seen_.begin(); it != seen_.end();) {
    bool gone = !rest_.store().get("events", it->second.first, it->second.second);
    it = gone ? seen_.erase(it) : std::next(it);
  }
}

}  // namespace lpk::kubesim
