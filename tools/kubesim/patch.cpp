#include "tools/kubesim/patch.hpp"

#include <algorithm>
#include <stdexcept>

namespace lpk::kubesim {

json apply_merge_patch(const json& target, const json& patch) {
  json out = target;
  out.merge_patch(patch);
  return out;
}

namespace {

// The wording of the json-patch library the apiserver uses (evanphx/json-patch) for the
// failures a client meets most; others keep nlohmann's text.
std::string json_patch_error(const json& op, const json::exception& e) {
  std::string path = op.value("path", "");
  std::string kind = op.value("op", "");
  std::string key = path.substr(path.rfind('/') + 1);
  if (kind == "test") return "testing value " + path + " failed: test failed";
  if (kind == "remove") return "Unable to remove nonexistent key: " + key + ": missing value";
  if (kind == "replace")
    return "replace operation does not apply: doc is missing key: " + path + ": missing value";
  return e.what();
}

}  // namespace

json apply_json_patch(const json& target, const json& ops) {
  if (!ops.is_array()) throw std::invalid_argument("json patch must be an array of operations");
  // One operation at a time, to say which failed; the result is used only if all succeed.
  json out = target;
  for (const auto& op : ops) {
    try {
      out = out.patch(json::array({op}));
    } catch (const json::exception& e) {
      throw std::invalid_argument(op.is_object() ? json_patch_error(op, e) : e.what());
    }
  }
  return out;
}

std::string merge_key_for(const std::string& field, const json& sample) {
  // From the patchMergeKey tags in k8s.io/api core/v1, apps/v1 and meta/v1 types.go.
  static const char* kByName[] = {
      "containers",       "initContainers", "ephemeralContainers", "env", "volumes",
      "imagePullSecrets", "resourceClaims"};
  for (const char* f : kByName) {
    if (field == f) return "name";
  }
  if (field == "volumeMounts") return "mountPath";
  if (field == "volumeDevices") return "devicePath";
  if (field == "ports") {
    // Container ports merge on containerPort, service ports on port.
    if (sample.is_object() && sample.contains("containerPort")) return "containerPort";
    return "port";
  }
  if (field == "conditions") return "type";
  if (field == "hostAliases") return "ip";
  if (field == "ownerReferences") return "uid";
  if (field == "topologySpreadConstraints") return "topologyKey";
  return "";
}

namespace {

json merge_value(const std::string& field, const json& cur, const json& patch);

bool is_directive_key(const std::string& k) { return !k.empty() && k[0] == '$'; }

bool same_key(const json& a, const json& b, const std::string& key) {
  return a.is_object() && b.is_object() && a.contains(key) && b.contains(key) && a[key] == b[key];
}

json merge_keyed_list(const std::string& key, const json& cur, const json& patch) {
  json out = cur.is_array() ? cur : json::array();
  for (const auto& p : patch) {
    if (p.is_object() && p.value("$patch", "") == "replace") {
      json rest = json::array();
      for (const auto& q : patch) {
        if (!(q.is_object() && q.contains("$patch"))) rest.push_back(q);
      }
      return rest;
    }
  }
  for (const auto& p : patch) {
    if (!p.is_object() || !p.contains(key)) {
      throw std::invalid_argument("map: " + p.dump() +
                                  " does not contain declared merge key: " + key);
    }
    auto it =
        std::find_if(out.begin(), out.end(), [&](const json& e) { return same_key(e, p, key); });
    if (p.value("$patch", "") == "delete") {
      if (it != out.end()) out.erase(it);
      continue;
    }
    if (it == out.end()) {
      json fresh = merge_value("", json::object(), p);
      out.push_back(fresh);
    } else {
      *it = merge_value("", *it, p);
    }
  }
  return out;
}

json merge_list(const std::string& field, const json& cur, const json& patch) {
  std::string key;
  if (!patch.empty()) key = merge_key_for(field, patch[0]);
  if (key.empty() && cur.is_array() && !cur.empty()) key = merge_key_for(field, cur[0]);
  bool objects = !patch.empty() && patch[0].is_object();
  if (key.empty() || !objects) return patch;
  return merge_keyed_list(key, cur, patch);
}

// Reorders list items as $setElementOrder says; items it does not name keep their place last.
json reorder(const json& list, const json& order, const std::string& key) {
  if (!list.is_array() || !order.is_array()) return list;
  json out = json::array();
  std::vector<bool> used(list.size(), false);
  for (const auto& o : order) {
    for (size_t i = 0; i < list.size(); ++i) {
      bool match = key.empty() ? list[i] == o : same_key(list[i], o, key);
      if (!used[i] && match) {
        out.push_back(list[i]);
        used[i] = true;
        break;
      }
    }
  }
  for (size_t i = 0; i < list.size(); ++i) {
    if (!used[i]) out.push_back(list[i]);
  }
  return out;
}

void apply_list_directives(json& out, const json& patch) {
  const std::string kOrder = "$setElementOrder/";
  const std::string kDelete = "$deleteFromPrimitiveList/";
  for (const auto& [k, v] : patch.items()) {
    if (k.rfind(kDelete, 0) == 0) {
      std::string field = k.substr(kDelete.size());
      if (!out.contains(field) || !out[field].is_array() || !v.is_array()) continue;
      json kept = json::array();
      for (const auto& e : out[field]) {
        if (std::find(v.begin(), v.end(), e) == v.end()) kept.push_back(e);
      }
      out[field] = kept;
    }
  }
  for (const auto& [k, v] : patch.items()) {
    if (k.rfind(kOrder, 0) == 0) {
      std::string field = k.substr(kOrder.size());
      if (!out.contains(field)) continue;
      std::string key = v.empty() ? "" : merge_key_for(field, v[0]);
      out[field] = reorder(out[field], v, key);
    }
  }
}

json merge_object(const json& cur, const json& patch) {
  std::string directive = patch.value("$patch", "");
  if (directive == "replace") {
    json out = patch;
    out.erase("$patch");
    return out;
  }
  if (directive == "delete") return nullptr;
  if (!directive.empty() && directive != "merge") {
    throw std::invalid_argument("Unknown patch type: " + directive);
  }
  json out = cur.is_object() ? cur : json::object();
  for (const auto& [k, v] : patch.items()) {
    if (is_directive_key(k)) continue;
    if (v.is_null()) {
      out.erase(k);
      continue;
    }
    json merged = merge_value(k, out.contains(k) ? out[k] : json(), v);
    if (merged.is_null())
      out.erase(k);
    else
      out[k] = merged;
  }
  if (auto rk = patch.find("$retainKeys"); rk != patch.end() && rk->is_array()) {
    for (auto it = out.begin(); it != out.end();) {
      bool keep = std::find(rk->begin(), rk->end(), it.key()) != rk->end();
      it = keep ? std::next(it) : out.erase(it);
    }
  }
  apply_list_directives(out, patch);
  return out;
}

json merge_value(const std::string& field, const json& cur, const json& patch) {
  if (patch.is_object()) return merge_object(cur, patch);
  if (patch.is_array()) return merge_list(field, cur, patch);
  return patch;
}

}  // namespace

json apply_strategic_merge_patch(const json& target, const json& patch) {
  if (!patch.is_object()) throw std::invalid_argument("strategic merge patch must be an object");
  json out = merge_object(target, patch);
  return out.is_null() ? json::object() : out;
}

}  // namespace lpk::kubesim
