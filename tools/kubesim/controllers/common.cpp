#include "tools/kubesim/controllers/common.hpp"

#include <cmath>

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

bool pod_ready(const json& pod) {
  if (!pod.contains("status")) return false;
  for (const auto& c : pod["status"].value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

bool terminating(const json& obj) { return obj["metadata"].contains("deletionTimestamp"); }

std::string safe_encode(const std::string& s) {
  static const char* kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (unsigned char c : s) out += kAlphabet[c % 27];
  return out;
}

std::string template_hash(const json& pod_template) {
  uint32_t h = 2166136261u;
  for (unsigned char c : pod_template.dump()) {
    h ^= c;
    h *= 16777619u;
  }
  return safe_encode(std::to_string(h));
}

json pod_from_template(const json& owner, const json& tmpl, const std::string& name,
                       const std::string& ns) {
  json meta = tmpl.value("metadata", json::object());
  meta["name"] = name;
  meta["namespace"] = ns;
  meta["ownerReferences"] = {controller_ref(owner)};
  meta.erase("creationTimestamp");
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

}  // namespace lpk::kubesim
