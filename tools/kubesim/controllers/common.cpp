#include "tools/kubesim/controllers/common.hpp"

#include <cmath>
#include <ctime>

namespace lpk::kubesim {

json controller_ref(const json& owner) {
  return {{"apiVersion", owner["apiVersion"]},
          {"kind", owner["kind"]},
          {"name", owner["metadata"]["name"]},
          {"uid", owner["metadata"]["uid"]},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

bool owned_by(const json& obj, const std::string& uid) {
  for (const auto& r : obj["metadata"].value("ownerReferences", json::array())) {
    if (r.value("uid", "") == uid) return true;
  }
  return false;
}

std::vector<json> owned(Rest& rest, const std::string& plural, const json& owner) {
  std::vector<json> out;
  std::string uid = owner["metadata"].value("uid", "");
  for (auto& o : rest.store().list(plural, owner["metadata"].value("namespace", ""))) {
    if (owned_by(o, uid)) out.push_back(std::move(o));
  }
  return out;
}

namespace {
const json* condition_of(const json& pod, const char* type) {
  if (!pod.contains("status") || !pod["status"].contains("conditions")) return nullptr;
  for (const auto& c : pod["status"]["conditions"]) {
    if (c.value("type", "") == type) return &c;
  }
  return nullptr;
}
}  // namespace

bool pod_ready(const json& pod) {
  const json* c = condition_of(pod, "Ready");
  return c && c->value("status", "") == "True";
}

bool terminating(const json& obj) { return obj["metadata"].contains("deletionTimestamp"); }

std::string pod_phase(const json& pod) {
  return pod.contains("status") ? pod["status"].value("phase", "") : "";
}

bool pod_terminal(const json& pod) {
  std::string phase = pod_phase(pod);
  return phase == "Succeeded" || phase == "Failed";
}

bool pod_active(const json& pod) { return !pod_terminal(pod) && !terminating(pod); }

bool pod_running_and_ready(const json& pod) {
  return pod_phase(pod) == "Running" && pod_ready(pod);
}

bool pod_available(const json& pod, int min_ready, SysTime now) {
  if (!pod_ready(pod)) return false;
  if (min_ready <= 0) return true;
  const json* c = condition_of(pod, "Ready");
  auto since = parse_rfc3339(c->value("lastTransitionTime", ""));
  return since && *since + std::chrono::seconds(min_ready) < now;
}

std::string safe_encode(const std::string& s) {
  static const char* kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (unsigned char c : s) out += kAlphabet[c % 27];
  return out;
}

std::string template_hash(const json& pod_template, int collision_count) {
  uint32_t h = 2166136261u;
  std::string text = semantic(pod_template).dump();
  if (collision_count > 0) text += std::to_string(collision_count);
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  return safe_encode(std::to_string(h));
}

json pod_from_template(const json& owner, const json& tmpl, const std::string& ns) {
  json meta = json::object();
  const json& tm = tmpl.value("metadata", json::object());
  for (const char* f : {"labels", "annotations", "finalizers"}) {
    if (tm.contains(f)) meta[f] = tm[f];
  }
  meta["namespace"] = ns;
  meta["ownerReferences"] = {controller_ref(owner)};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", meta},
          {"spec", tmpl.value("spec", json::object())}};
}

int int_or_percent(const json& v, int total, bool round_up) {
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (!s.empty() && s.back() == '%') {
      double pct = std::atof(s.substr(0, s.size() - 1).c_str()) * total / 100.0;
      return int(round_up ? std::ceil(pct) : std::floor(pct));
    }
    return std::atoi(s.c_str());
  }
  return 0;
}

int spec_replicas(const json& obj) {
  if (!obj.contains("spec")) return 1;
  const json& r = obj["spec"].value("replicas", json(1));
  return r.is_number_integer() ? r.get<int>() : 1;
}

int status_int(const json& obj, const char* field) {
  if (!obj.contains("status") || !obj["status"].is_object()) return 0;
  const json& v = obj["status"].value(field, json(0));
  return v.is_number_integer() ? v.get<int>() : 0;
}

json semantic(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, x] : v.items()) {
      json s = semantic(x);
      if (!s.is_null() && !((s.is_object() || s.is_array()) && s.empty())) out[k] = std::move(s);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& x : v) out.push_back(semantic(x));
    return out;
  }
  return v;
}

bool semantic_equal(const json& a, const json& b) { return semantic(a) == semantic(b); }

std::optional<SysTime> parse_rfc3339(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string format_rfc3339(SysTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace lpk::kubesim
