#include "tools/kubesim/openapi.hpp"

#include "tools/kubesim/resources.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

namespace {

std::string gv_path(const ResourceType& t) {
  return t.group.empty() ? "api/" + t.version : "apis/" + t.group + "/" + t.version;
}

json operation(const ResourceType& t, const char* verb) {
  json params =
      json::array({{{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
                   {{"name", "fieldManager"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
                   {{"name", "dryRun"}, {"in", "query"}, {"schema", {{"type", "string"}}}}});
  return {{"operationId", std::string(verb) + t.kind},
          {"x-kubernetes-action", verb},
          {"x-kubernetes-group-version-kind",
           {{"group", t.group}, {"version", t.version}, {"kind", t.kind}}},
          {"parameters", params},
          {"responses", {{"200", {{"description", "OK"}}}}}};
}

json gv_document(const std::string& gv) {
  json paths = json::object();
  for (const auto& t : resource_types()) {
    if (gv_path(t) != gv) continue;
    std::string base = "/" + gv + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.plural;
    paths[base] = {{"post", operation(t, "post")}};
    paths[base + "/{name}"] = {{"get", operation(t, "get")},
                               {"put", operation(t, "put")},
                               {"patch", operation(t, "patch")}};
  }
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
          {"paths", paths},
          {"components", {{"schemas", openapi_schemas()}}}};
}

}  // namespace

std::optional<json> openapi_document(const std::string& path) {
  const std::string kPrefix = "/openapi/v3";
  if (path == kPrefix || path == kPrefix + "/") {
    json paths = json::object();
    for (const auto& t : resource_types()) {
      std::string gv = gv_path(t);
      paths[gv] = {{"serverRelativeURL", kPrefix + "/" + gv + "?hash=kubesim"}};
    }
    return json{{"paths", paths}};
  }
  if (path.rfind(kPrefix + "/", 0) != 0) return std::nullopt;
  std::string gv = path.substr(kPrefix.size() + 1);
  for (const auto& t : resource_types()) {
    if (gv_path(t) == gv) return gv_document(gv);
  }
  return std::nullopt;
}

}  // namespace lpk::kubesim
