#include "tools/kubesim/rbac.hpp"

#include <algorithm>

#include "tools/kubesim/tokens.hpp"

namespace lpk::kubesim {

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    if (slash > pos) parts.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return parts;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has(const json& list, const std::string& v) {
  if (!list.is_array()) return false;
  return std::any_of(list.begin(), list.end(), [&](const json& x) { return x == v; });
}

bool resource_matches(const json& rule, const AuthzAttributes& a) {
  std::string combined = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
  for (const auto& r : rule.value("resources", json::array())) {
    std::string s = r.is_string() ? r.get<std::string>() : "";
    if (s == "*" || s == combined) return true;
    if (a.subresource.empty()) continue;
    if (s == a.resource + "/*" || s == "*/" + a.subresource) return true;
  }
  return false;
}

bool non_resource_matches(const json& rule, const std::string& path) {
  for (const auto& u : rule.value("nonResourceURLs", json::array())) {
    std::string s = u.is_string() ? u.get<std::string>() : "";
    if (s == "*" || s == path) return true;
    if (!s.empty() && s.back() == '*' && path.rfind(s.substr(0, s.size() - 1), 0) == 0) return true;
  }
  return false;
}

bool rule_allows(const json& rule, const AuthzAttributes& a) {
  const json& verbs = rule.value("verbs", json::array());
  if (!has(verbs, "*") && !has(verbs, a.verb)) return false;
  if (!a.resource_request) return non_resource_matches(rule, a.path);
  const json& groups = rule.value("apiGroups", json::array());
  if (!has(groups, "*") && !has(groups, a.group)) return false;
  if (!resource_matches(rule, a)) return false;
  const json& names = rule.value("resourceNames", json::array());
  return names.empty() || has(names, a.name);
}

// The subject description of the allow reason: `User "u"`, `ServiceAccount "sa/ns"`.
std::string subject_applies(const json& subject, const std::string& binding_ns,
                            const std::string& user, const std::vector<std::string>& groups) {
  std::string kind = subject.value("kind", "");
  std::string name = subject.value("name", "");
  if (kind == "User" && name == user) return "User \"" + name + "\"";
  if (kind == "Group" && std::find(groups.begin(), groups.end(), name) != groups.end()) {
    return "Group \"" + name + "\"";
  }
  if (kind == "ServiceAccount") {
    std::string ns = subject.value("namespace", binding_ns);
    if (user == std::string(kServiceAccountPrefix) + ns + ":" + name) {
      return "ServiceAccount \"" + name + "/" + ns + "\"";
    }
  }
  return "";
}

struct Grant {
  json rules;
  std::string reason;  // "RoleBinding "rb/ns" of Role "r" to User "u""
};

// Every rule set that bindings give the user: cluster-wide ones, then those of namespace ns.
std::vector<Grant> grants(const Store& store, const std::string& user,
                          const std::vector<std::string>& groups, const std::string& ns) {
  std::vector<Grant> out;
  auto consider = [&](const json& b, bool cluster) {
    std::string bns = b["metadata"].value("namespace", "");
    std::string who;
    for (const auto& s : b.value("subjects", json::array())) {
      if (who.empty()) who = subject_applies(s, bns, user, groups);
    }
    if (who.empty()) return;
    const json& ref = b.value("roleRef", json::object());
    std::string kind = ref.value("kind", ""), rname = ref.value("name", "");
    auto role = kind == "ClusterRole" ? store.get("clusterroles", "", rname)
                                      : store.get("roles", bns, rname);
    if (!role) return;
    std::string bname = b["metadata"].value("name", "");
    std::string bdesc = cluster ? "ClusterRoleBinding \"" + bname + "\""
                                : "RoleBinding \"" + bname + "/" + bns + "\"";
    std::string rdesc = kind == "ClusterRole" ? "ClusterRole \"" + rname + "\""
                                              : "Role \"" + rname + "/" + bns + "\"";
    out.push_back({role->value("rules", json::array()), bdesc + " of " + rdesc + " to " + who});
  };
  for (const auto& b : store.list("clusterrolebindings")) consider(b, true);
  if (!ns.empty()) {
    for (const auto& b : store.list("rolebindings", ns)) consider(b, false);
  }
  return out;
}

}  // namespace

AuthzAttributes request_attributes(const std::string& method, const std::string& path,
                                   const std::map<std::string, std::string>& query,
                                   const std::string& user, const std::vector<std::string>& groups) {
  AuthzAttributes a;
  a.user = user;
  a.groups = groups;
  a.path = path;
  a.verb = lower(method);
  auto parts = split_path(path);
  bool core = parts.size() >= 3 && parts[0] == "api";
  bool grouped = parts.size() >= 4 && parts[0] == "apis";
  if (!core && !grouped) {
    a.resource_request = false;
    return a;
  }
  size_t i = core ? 2 : 3;
  a.group = core ? "" : parts[1];
  if (parts.size() > i + 1 && parts[i] == "namespaces") {
    a.ns = parts[i + 1];
    i += 2;
    // /api/v1/namespaces/x (and its status, finalize) is the namespace itself.
    bool own = i == parts.size() ||
               (i + 1 == parts.size() && (parts[i] == "status" || parts[i] == "finalize"));
    if (own) {
      a.resource = "namespaces";
      a.name = a.ns;
      if (i < parts.size()) a.subresource = parts[i];
      i = parts.size();
    }
  }
  if (i < parts.size()) a.resource = parts[i];
  if (i + 1 < parts.size()) a.name = parts[i + 1];
  if (i + 2 < parts.size()) a.subresource = parts[i + 2];
  auto w = query.find("watch");
  bool watch = w != query.end() && (w->second == "true" || w->second == "1" || w->second == "True");
  if (method == "GET" || method == "HEAD") {
    a.verb = a.name.empty() ? (watch ? "watch" : "list") : (watch ? "watch" : "get");
  } else if (method == "POST") {
    a.verb = "create";
  } else if (method == "PUT") {
    a.verb = "update";
  } else if (method == "PATCH") {
    a.verb = "patch";
  } else if (method == "DELETE") {
    a.verb = a.name.empty() ? "deletecollection" : "delete";
  }
  return a;
}

AuthzDecision authorize(const Store& store, const AuthzAttributes& a) {
  if (std::find(a.groups.begin(), a.groups.end(), "system:masters") != a.groups.end()) {
    return {true, ""};
  }
  for (const auto& g : grants(store, a.user, a.groups, a.ns)) {
    for (const auto& rule : g.rules) {
      if (rule_allows(rule, a)) return {true, "RBAC: allowed by " + g.reason};
    }
  }
  return {false, ""};
}

std::string forbidden_message(const AuthzAttributes& a) {
  std::string who = "User \"" + a.user + "\" cannot " + a.verb;
  if (!a.resource_request) return who + " path \"" + a.path + "\"";
  std::string resource = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
  who += " resource \"" + resource + "\" in API group \"" + a.group + "\"";
  return who + (a.ns.empty() ? " at the cluster scope" : " in the namespace \"" + a.ns + "\"");
}

ApiError forbidden_error(const AuthzAttributes& a) {
  if (!a.resource_request) return ApiError(403, "Forbidden", "forbidden: " + forbidden_message(a));
  // A namespace named in its own path is the object, not the scope.
  return forbidden(a.resource, a.name, forbidden_message(a), a.group);
}

json rules_review_status(const Store& store, const std::string& user,
                         const std::vector<std::string>& groups, const std::string& ns) {
  json resource_rules = json::array(), non_resource_rules = json::array();
  for (const auto& g : grants(store, user, groups, ns)) {
    for (const auto& rule : g.rules) {
      if (rule.contains("nonResourceURLs")) {
        non_resource_rules.push_back(
            {{"verbs", rule.value("verbs", json::array())}, {"nonResourceURLs", rule["nonResourceURLs"]}});
        continue;
      }
      json r = {{"verbs", rule.value("verbs", json::array())},
                {"apiGroups", rule.value("apiGroups", json::array())},
                {"resources", rule.value("resources", json::array())}};
      if (rule.contains("resourceNames")) r["resourceNames"] = rule["resourceNames"];
      resource_rules.push_back(r);
    }
  }
  return {{"resourceRules", resource_rules},
          {"nonResourceRules", non_resource_rules},
          {"incomplete", false}};
}

}  // namespace lpk::kubesim
