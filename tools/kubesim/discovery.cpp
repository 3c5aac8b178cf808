#include "tools/kubesim/discovery.hpp"

#include <algorithm>

#include "tools/kubesim/resources.hpp"
#include "tools/kubesim/scale.hpp"

namespace lpk::kubesim {

namespace {

const json kVerbs = {"create", "delete", "deletecollection", "get",
                     "list",   "patch",  "update",           "watch"};

bool in_category_all(const std::string& plural) {
  return plural == "pods" || plural == "services" || plural == "deployments" ||
         plural == "replicasets" || plural == "statefulsets" || plural == "jobs";
}

json resource_list(const std::string& group, const std::string& version) {
  json resources = json::array();
  for (const auto& t : resource_types()) {
    if (t.group != group || t.version != version) continue;
    json r = {{"name", t.plural},
              {"singularName", t.singular},
              {"namespaced", t.namespaced},
              {"kind", t.kind},
              {"verbs", kVerbs},
              {"storageVersionHash", ""}};
    if (t.plural == "namespaces") {
      r["verbs"] = {"create", "delete", "get", "list", "patch", "update", "watch"};
    }
    if (!t.verbs.empty()) r["verbs"] = t.verbs;
    if (!t.short_names.empty()) r["shortNames"] = t.short_names;
    if (in_category_all(t.plural)) r["categories"] = {"all"};
    resources.push_back(r);
    if (t.has_status) {
      resources.push_back({{"name", t.plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", t.namespaced},
                           {"kind", t.kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
    auto sub = [&](const char* name, const char* kind, json verbs) {
      resources.push_back({{"name", name},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"kind", kind},
                           {"verbs", verbs}});
    };
    if (t.plural == "pods") {
      sub("pods/log", "Pod", {"get"});
      sub("pods/portforward", "PodPortForwardOptions", {"create", "get"});
      resources.push_back({{"name", "pods/eviction"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"group", "policy"},
                           {"version", "v1"},
                           {"kind", "Eviction"},
                           {"verbs", {"create"}}});
    }
    if (has_scale(t)) {
      resources.push_back({{"name", t.plural + "/scale"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"group", "autoscaling"},
                           {"version", "v1"},
                           {"kind", "Scale"},
                           {"verbs", {"get", "patch", "update"}}});
    }
    if (t.plural == "serviceaccounts") {
      resources.push_back({{"name", "serviceaccounts/token"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"group", "authentication.k8s.io"},
                           {"version", "v1"},
                           {"kind", "TokenRequest"},
                           {"verbs", {"create"}}});
    }
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", group.empty() ? version : group + "/" + version},
          {"resources", resources}};
}

json api_group(const std::string& group) {
  json gv = {{"groupVersion", group + "/v1"}, {"version", "v1"}};
  return {{"name", group}, {"versions", json::array({gv})}, {"preferredVersion", gv}};
}

}  // namespace

std::optional<json> discovery_document(const std::string& path, const std::string& server_addr) {
  if (path == "/version" || path == "/version/") {
    return json{{"major", "1"},
                {"minor", "32"},
                {"gitVersion", "v1.32.0-kubesim"},
                {"gitCommit", "0000000000000000000000000000000000000000"},
                {"gitTreeState", "clean"},
                {"buildDate", "2026-01-01T00:00:00Z"},
                {"goVersion", "go1.23.0"},
                {"compiler", "gc"},
                {"platform", "linux/amd64"}};
  }
  if (path == "/api" || path == "/api/") {
    return json{{"kind", "APIVersions"},
                {"versions", {"v1"}},
                {"serverAddressByClientCIDRs",
                 {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_addr}}}}};
  }
  if (path == "/api/v1" || path == "/api/v1/") return resource_list("", "v1");
  std::vector<std::string> groups_served;
  for (const auto& t : resource_types()) {
    if (!t.group.empty() && std::find(groups_served.begin(), groups_served.end(), t.group) ==
                                groups_served.end()) {
      groups_served.push_back(t.group);
    }
  }
  if (path == "/apis" || path == "/apis/") {
    json groups = json::array();
    for (const auto& g : groups_served) groups.push_back(api_group(g));
    return json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
  }
  for (const auto& g : groups_served) {
    std::string base = std::string("/apis/") + g;
    if (path == base || path == base + "/") {
      json doc = api_group(g);
      doc["kind"] = "APIGroup";
      doc["apiVersion"] = "v1";
      return doc;
    }
    if (path == base + "/v1" || path == base + "/v1/") return resource_list(g, "v1");
  }
  return std::nullopt;
}

}  // namespace lpk::kubesim
