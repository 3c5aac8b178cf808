// Turns the compact type description of openapi_types.cpp into OpenAPI v3 component schemas
// shaped as the apiserver's: named types referenced through allOf/$ref, the kinds tagged with
// x-kubernetes-group-version-kind, lists that merge by a key tagged with the patch strategy
// and list-map keys (the same keys patch.cpp merges by).

#include <sstream>
#include <stdexcept>

#include "tools/kubesim/openapi.hpp"
#include "tools/kubesim/patch.hpp"

namespace lpk::kubesim {

extern const char* const kOpenApiTypes;

namespace {

using json = nlohmann::json;

std::string full_name(const std::string& t) {
  size_t dot = t.find('.');
  std::string pkg = t.substr(0, dot), name = t.substr(dot + 1);
  if (pkg == "meta") return "io.k8s.apimachinery.pkg.apis.meta.v1." + name;
  if (pkg == "intstr") return "io.k8s.apimachinery.pkg.util.intstr." + name;
  if (pkg == "core" || pkg == "apps" || pkg == "rbac" || pkg == "discovery" || pkg == "batch" ||
      pkg == "coordination") {
    return "io.k8s.api." + pkg + ".v1." + name;
  }
  throw std::logic_error("openapi: unknown package in " + t);
}

json ref(const std::string& t) { return {{"$ref", "#/components/schemas/" + full_name(t)}}; }

bool primitive(const std::string& t) {
  return t == "string" || t == "integer" || t == "boolean" || t == "number" || t == "object";
}

json item_schema(const std::string& t) {
  if (t == "integer") return {{"type", "integer"}, {"format", "int32"}, {"default", 0}};
  if (t == "string") return {{"type", "string"}, {"default", ""}};
  if (primitive(t)) return {{"type", t}};
  return {{"allOf", json::array({ref(t)})}, {"default", json::object()}};
}

json field_schema(const std::string& field, const std::string& t, const std::string& doc) {
  json s;
  if (t.rfind("[]", 0) == 0) {
    std::string elem = t.substr(2);
    s = {{"type", "array"}, {"items", item_schema(elem)}};
    json sample = elem == "core.ContainerPort" ? json{{"containerPort", 0}} : json::object();
    std::string key = primitive(elem) ? "" : merge_key_for(field, sample);
    if (!key.empty()) {
      s["x-kubernetes-patch-strategy"] = "merge";
      s["x-kubernetes-patch-merge-key"] = key;
      s["x-kubernetes-list-type"] = "map";
      s["x-kubernetes-list-map-keys"] =
          key == "containerPort" || key == "port" ? json{key, "protocol"} : json{key};
    } else if (field == "finalizers") {
      s["x-kubernetes-patch-strategy"] = "merge";
      s["x-kubernetes-list-type"] = "set";
    } else {
      s["x-kubernetes-list-type"] = "atomic";
    }
  } else if (t.rfind("map[string]", 0) == 0) {
    s = {{"type", "object"}, {"additionalProperties", item_schema(t.substr(11))}};
  } else if (primitive(t)) {
    s = item_schema(t);
    s.erase("default");
  } else {
    s = item_schema(t);
  }
  s["description"] = doc;
  return s;
}

// `"text"` at pos (with \" escapes) -> text; pos moves past it.
std::string quoted(const std::string& line, size_t& pos) {
  size_t start = line.find('"', pos);
  if (start == std::string::npos) throw std::logic_error("openapi: no description in " + line);
  std::string out;
  size_t i = start + 1;
  for (; i < line.size() && line[i] != '"'; ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) ++i;
    out += line[i];
  }
  pos = i + 1;
  return out;
}

json gvk_of(const std::string& spec) {
  size_t last = spec.rfind('/');
  std::string gv = spec.substr(0, last), kind = spec.substr(last + 1);
  size_t slash = gv.find('/');
  std::string group = slash == std::string::npos ? "" : gv.substr(0, slash);
  std::string version = slash == std::string::npos ? gv : gv.substr(slash + 1);
  return json::array({{{"group", group}, {"kind", kind}, {"version", version}}});
}

json build_schemas() {
  json schemas = {
      {full_name("intstr.IntOrString"),
       {{"type", "string"},
        {"format", "int-or-string"},
        {"description",
         "IntOrString is a type that can hold an int32 or a string. When used in JSON or YAML "
         "marshalling and unmarshalling, it produces or consumes the inner type."}}},
      {full_name("meta.MicroTime"),
       {{"type", "string"},
        {"format", "date-time"},
        {"description", "MicroTime is version of Time with microsecond level precision."}}},
      {full_name("meta.Time"),
       {{"type", "string"},
        {"format", "date-time"},
        {"description",
         "Time is a wrapper around time.Time which supports correct marshaling to YAML and "
         "JSON."}}}};
  std::istringstream in(kOpenApiTypes);
  json* current = nullptr;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(' ') == std::string::npos) continue;
    std::istringstream words(line);
    std::string name, type;
    words >> name;
    if (line[0] != ' ') {
      size_t pos = line.find(' ');
      std::string rest = line.substr(pos + 1);
      json s = {{"type", "object"}, {"properties", json::object()}};
      if (rest[0] != '"') s["x-kubernetes-group-version-kind"] = gvk_of(rest.substr(0, rest.find(' ')));
      s["description"] = quoted(line, pos);
      current = &(schemas[full_name(name)] = s);
      continue;
    }
    words >> type;
    size_t pos = line.find(type, line.find(name) + name.size()) + type.size();
    bool required = name.back() == '!';
    if (required) {
      name.pop_back();
      (*current)["required"].push_back(name);
    }
    (*current)["properties"][name] = field_schema(name, type, quoted(line, pos));
  }
  return schemas;
}

}  // namespace

const nlohmann::json& openapi_schemas() {
  static const json kSchemas = build_schemas();
  return kSchemas;
}

}  // namespace lpk::kubesim
