#include "tools/kubesim/apply.hpp"

#include <algorithm>
#include <map>

#include "tools/kubesim/patch.hpp"
#include "tools/kubesim/status.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

namespace {

// The fields fieldmanager strips before tracking ownership (fieldmanager's StripMeta and
// the main resource's reset of status).
const std::set<std::string> kUntrackedMeta = {"name",
                                              "namespace",
                                              "uid",
                                              "resourceVersion",
                                              "generation",
                                              "selfLink",
                                              "creationTimestamp",
                                              "managedFields",
                                              "deletionTimestamp",
                                              "deletionGracePeriodSeconds"};

// "k:{"name":"app"}" for an item of a list that merges by key; "" when the list is atomic.
std::string item_element(const std::string& field, const json& item) {
  std::string key = merge_key_for(field, item);
  if (key.empty() || !item.is_object() || !item.contains(key)) return "";
  return "k:" + json{{key, item[key]}}.dump();
}

bool keyed(const std::string& field, const json& list) {
  return !list.empty() && std::all_of(list.begin(), list.end(), [&](const json& i) {
    return !item_element(field, i).empty();
  });
}

void collect(const json& v, const std::string& field, FieldPath& path, FieldSet& out) {
  if (v.is_object() && !v.empty()) {
    for (const auto& [k, child] : v.items()) {
      path.push_back("f:" + k);
      collect(child, k, path, out);
      path.pop_back();
    }
  } else if (v.is_array() && keyed(field, v)) {
    for (const auto& item : v) {
      path.push_back(item_element(field, item));
      path.push_back(".");
      out.insert(path);
      path.pop_back();
      for (const auto& [k, child] : item.items()) {
        path.push_back("f:" + k);
        collect(child, k, path, out);
        path.pop_back();
      }
      path.pop_back();
    }
  } else if (!path.empty()) {
    out.insert(path);
  }
}

void parse_into(const json& node, FieldPath& path, FieldSet& out) {
  if (!node.is_object()) return;
  for (const auto& [k, child] : node.items()) {
    path.push_back(k);
    if (k == "." || !child.is_object() || child.empty())
      out.insert(path);
    else
      parse_into(child, path, out);
    path.pop_back();
  }
}

bool item_matches(const json& item, const std::string& element) {
  json keys = json::parse(element.substr(2), nullptr, false);
  if (!keys.is_object() || !item.is_object()) return false;
  for (const auto& [k, v] : keys.items()) {
    if (!item.contains(k) || item[k] != v) return false;
  }
  return true;
}

// The value at p (a list item for a path ending in "."), or null when absent.
json* lookup(json& obj, const FieldPath& p, size_t depth) {
  json* cur = &obj;
  for (size_t i = 0; i < depth; ++i) {
    const std::string& e = p[i];
    if (e == ".") return cur;
    if (e.rfind("f:", 0) == 0 && cur->is_object() && cur->contains(e.substr(2))) {
      cur = &(*cur)[e.substr(2)];
    } else if (e.rfind("k:", 0) == 0 && cur->is_array()) {
      auto it = std::find_if(cur->begin(), cur->end(),
                             [&](const json& item) { return item_matches(item, e); });
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else {
      return nullptr;
    }
  }
  return cur;
}

// Removes the field (or, for a path ending in ".", the list item) p names.
void remove_path(json& obj, FieldPath p) {
  if (!p.empty() && p.back() == ".") p.pop_back();
  if (p.empty()) return;
  json* parent = lookup(obj, p, p.size() - 1);
  if (!parent) return;
  const std::string& last = p.back();
  if (last.rfind("f:", 0) == 0 && parent->is_object()) {
    parent->erase(last.substr(2));
  } else if (last.rfind("k:", 0) == 0 && parent->is_array()) {
    auto it = std::find_if(parent->begin(), parent->end(),
                           [&](const json& item) { return item_matches(item, last); });
    if (it != parent->end()) parent->erase(it);
  }
}

struct Manager {
  json entry;  // the managedFields entry, fieldsV1 excluded
  FieldSet fields;
  bool is(const ApplyRequest& req) const {
    return entry.value("manager", "") == req.manager && entry.value("operation", "") == "Apply";
  }
};

std::vector<Manager> managers_of(const json& obj) {
  std::vector<Manager> out;
  if (!obj.is_object()) return out;
  for (const auto& e : obj["metadata"].value("managedFields", json::array())) {
    Manager m{e, parse_fields_v1(e.value("fieldsV1", json::object()))};
    m.entry.erase("fieldsV1");
    out.push_back(std::move(m));
  }
  return out;
}

// How conflicts name a manager (fieldmanager's printManager).
std::string manager_string(const json& e) {
  std::string s = json(e.value("manager", "")).dump();
  if (e.value("subresource", "") != "") s += " with subresource " + json(e["subresource"]).dump();
  if (e.value("operation", "") == "Update") {
    s += " using " + e.value("apiVersion", "");
    if (e.contains("time")) s += " at " + e.value("time", "");
  }
  return s;
}

struct Conflict {
  std::string manager;  // as conflicts print it
  size_t index;         // into the managers
  FieldPath path;
};

// internal/conflict.go's NewConflictError wording: one line for one conflict, else grouped
// by manager, managers sorted.
[[noreturn]] void throw_conflicts(const std::vector<Conflict>& cs) {
  json causes = json::array();
  for (const auto& c : cs) {
    causes.push_back({{"type", "FieldManagerConflict"},
                      {"message", "conflict with " + c.manager},
                      {"field", path_string(c.path)}});
  }
  std::string msg;
  if (cs.size() == 1) {
    msg = "Apply failed with 1 conflict: conflict with " + cs[0].manager + ": " +
          path_string(cs[0].path);
  } else {
    std::map<std::string, std::vector<std::string>> by;
    for (const auto& c : cs) by[c.manager].push_back(path_string(c.path));
    std::vector<std::string> lines;
    for (const auto& [m, paths] : by) {
      lines.push_back("conflicts with " + m + ":");
      for (const auto& p : paths) lines.push_back("- " + p);
    }
    msg = "Apply failed with " + std::to_string(cs.size()) + " conflicts: ";
    for (size_t i = 0; i < lines.size(); ++i) msg += (i ? "\n" : "") + lines[i];
  }
  throw ApiError(409, "Conflict", msg, {{"causes", causes}});
}

// Conflicts: fields this apply changes that another manager owns.
std::vector<Conflict> conflicts_of(json& live, json& merged, const FieldSet& applied,
                                   const std::vector<Manager>& managers, const ApplyRequest& req) {
  std::vector<Conflict> out;
  if (live.is_null()) return out;
  for (const auto& p : applied) {
    if (p.back() == ".") continue;
    const json* before = lookup(live, p, p.size());
    const json* after = lookup(merged, p, p.size());
    if (!before || (after && *before == *after)) continue;
    for (size_t i = 0; i < managers.size(); ++i) {
      const Manager& m = managers[i];
      if (!m.is(req) && m.fields.count(p)) out.push_back({manager_string(m.entry), i, p});
    }
  }
  return out;
}

// Fields this manager applied before and no longer does go, unless someone else owns them.
void remove_dropped_fields(json& merged, const std::vector<Manager>& managers,
                           const FieldSet& applied, const ApplyRequest& req) {
  auto mine =
      std::find_if(managers.begin(), managers.end(), [&](const Manager& m) { return m.is(req); });
  if (mine == managers.end()) return;
  std::vector<FieldPath> gone;
  for (const auto& p : mine->fields) {
    if (applied.count(p)) continue;
    bool shared = std::any_of(managers.begin(), managers.end(),
                              [&](const Manager& m) { return !m.is(req) && m.fields.count(p); });
    if (!shared) gone.push_back(p);
  }
  // Deepest first, so an item's fields go before the item.
  std::sort(gone.begin(), gone.end(),
            [](const FieldPath& a, const FieldPath& b) { return a.size() > b.size(); });
  for (const auto& p : gone) remove_path(merged, p);
}

// Managers that own nothing are left out, as fieldmanager leaves them out.
void set_managed_fields(json& obj, const std::vector<Manager>& managers) {
  json entries = json::array();
  for (const auto& m : managers) {
    if (m.fields.empty()) continue;
    json e = m.entry;
    e["fieldsV1"] = fields_v1(m.fields);
    entries.push_back(e);
  }
  if (entries.empty())
    obj["metadata"].erase("managedFields");
  else
    obj["metadata"]["managedFields"] = entries;
}

}  // namespace

FieldSet fields_of(const json& obj) {
  json o = obj;
  for (const char* f : {"apiVersion", "kind", "status"}) o.erase(f);
  if (o.contains("metadata") && o["metadata"].is_object()) {
    for (const auto& f : kUntrackedMeta) o["metadata"].erase(f);
    if (o["metadata"].empty()) o.erase("metadata");  // name alone is no field of its own
  }
  FieldSet out;
  FieldPath path;
  collect(o, "", path, out);
  return out;
}

json fields_v1(const FieldSet& set) {
  json root = json::object();
  for (const auto& p : set) {
    json* node = &root;
    for (const auto& e : p) node = &(*node)[e];
    if (node->is_null()) *node = json::object();
  }
  return root;
}

FieldSet parse_fields_v1(const json& v1) {
  FieldSet out;
  FieldPath path;
  parse_into(v1, path, out);
  return out;
}

std::string path_string(const FieldPath& p) {
  std::string s;
  for (const auto& e : p) {
    if (e.rfind("f:", 0) == 0) {
      s += "." + e.substr(2);
    } else if (e.rfind("k:", 0) == 0) {
      json keys = json::parse(e.substr(2), nullptr, false);
      std::string inner;
      if (keys.is_object()) {
        for (const auto& [k, v] : keys.items())
          inner += (inner.empty() ? "" : ",") + k + "=" + v.dump();
      }
      s += "[" + inner + "]";
    }
  }
  return s;
}

json record_update(const json& old_in, json next, const std::string& manager,
                   const std::string& api_version) {
  json old = old_in;
  FieldSet before = old.is_null() ? FieldSet{} : fields_of(old);
  FieldSet after = fields_of(next);
  FieldSet changed, removed;
  for (const auto& p : after) {
    const json* was = old.is_null() ? nullptr : lookup(old, p, p.size());
    if (!was || *was != *lookup(next, p, p.size())) changed.insert(p);
  }
  for (const auto& p : before) {
    if (!after.count(p)) removed.insert(p);
  }
  std::vector<Manager> managers = managers_of(old);
  bool found = false;
  for (auto& m : managers) {
    bool self =
        m.entry.value("manager", "") == manager && m.entry.value("operation", "") == "Update";
    for (const auto& p : removed) m.fields.erase(p);
    for (const auto& p : changed) {
      if (self)
        m.fields.insert(p);
      else
        m.fields.erase(p);
    }
    if (self && !changed.empty()) m.entry["time"] = now_rfc3339();
    found = found || self;
  }
  if (!found && !changed.empty()) {
    managers.push_back({{{"manager", manager},
                         {"operation", "Update"},
                         {"apiVersion", api_version},
                         {"time", now_rfc3339()},
                         {"fieldsType", "FieldsV1"}},
                        changed});
  }
  set_managed_fields(next, managers);
  return next;
}

json server_side_apply(const json& live_in, const json& config_in, const ApplyRequest& req) {
  json config = config_in;
  config.erase("status");
  config["metadata"].erase("managedFields");
  json live = live_in;
  json merged = live.is_null() ? config : apply_strategic_merge_patch(live, config);
  FieldSet applied = fields_of(config);
  std::vector<Manager> managers = managers_of(live);
  remove_dropped_fields(merged, managers, applied, req);
  auto conflicts = conflicts_of(live, merged, applied, managers, req);
  if (!conflicts.empty() && !req.force) throw_conflicts(conflicts);
  // Forced: the fields change hands.
  for (const auto& c : conflicts) managers[c.index].fields.erase(c.path);
  Manager mine{{{"manager", req.manager},
                {"operation", "Apply"},
                {"apiVersion", req.api_version},
                {"time", now_rfc3339()},
                {"fieldsType", "FieldsV1"}},
               applied};
  auto it =
      std::find_if(managers.begin(), managers.end(), [&](const Manager& m) { return m.is(req); });
  if (it == managers.end())
    managers.push_back(std::move(mine));
  else
    *it = std::move(mine);
  set_managed_fields(merged, managers);
  return merged;
}

}  // namespace lpk::kubesim
