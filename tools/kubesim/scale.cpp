#include "tools/kubesim/scale.hpp"

#include "tools/kubesim/patch.hpp"
#include "tools/kubesim/rest.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

namespace {

// metav1.FormatLabelSelector: matchLabels as k=v, then the expressions, comma-separated.
std::string selector_string(const json& sel) {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ",") + s; };
  const json labels = sel.value("matchLabels", json::object());
  for (const auto& [k, v] : labels.items()) {
    add(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  }
  for (const auto& e : sel.value("matchExpressions", json::array())) {
    std::string op = e.value("operator", ""), key = e.value("key", "");
    std::string values;
    for (const auto& v : e.value("values", json::array())) {
      values += (values.empty() ? "" : ",") + v.get<std::string>();
    }
    if (op == "In") add(key + " in (" + values + ")");
    if (op == "NotIn") add(key + " notin (" + values + ")");
    if (op == "Exists") add(key);
    if (op == "DoesNotExist") add("!" + key);
  }
  return out;
}

json decode_scale(const Route& r, const std::string& body) {
  json s = json::parse(body, nullptr, false);
  if (!s.is_object()) throw bad_request("couldn't get version/kind; json parse error");
  if (s.value("kind", "Scale") != "Scale") {
    throw bad_request("the object provided is unrecognized (must be of type Scale)");
  }
  if (s.contains("metadata") && s["metadata"].value("name", r.name) != r.name) {
    throw bad_request("the name of the object (" + s["metadata"].value("name", "") +
                      ") does not match the name on the URL (" + r.name + ")");
  }
  return s;
}

}  // namespace

bool has_scale(const ResourceType& t) {
  return t.plural == "deployments" || t.plural == "replicasets" || t.plural == "statefulsets";
}

json scale_of(const json& w) {
  const json& m = w["metadata"];
  json meta = {{"name", m.value("name", "")},
               {"namespace", m.value("namespace", "")},
               {"uid", m.value("uid", "")},
               {"resourceVersion", m.value("resourceVersion", "")},
               {"creationTimestamp", m.value("creationTimestamp", "")}};
  const json& spec = w.value("spec", json::object());
  const json& st = w.value("status", json::object());
  return {{"kind", "Scale"},
          {"apiVersion", "autoscaling/v1"},
          {"metadata", meta},
          {"spec", {{"replicas", spec.value("replicas", 1)}}},
          {"status",
           {{"replicas", st.value("replicas", 0)},
            {"selector", selector_string(spec.value("selector", json::object()))}}}};
}

json serve_scale(Rest& rest, const Route& r, const std::string& method,
                 const std::string& content_type, const std::string& body) {
  Route parent = r;
  parent.sub.clear();
  json w = rest.get(parent);  // 404 names the workload, as the apiserver's does
  if (method == "GET") return scale_of(w);
  json wanted;
  if (method == "PUT") {
    wanted = decode_scale(r, body);
  } else if (method == "PATCH") {
    json p = json::parse(body, nullptr, false);
    if (p.is_discarded()) throw bad_request("invalid JSON in patch body");
    json current = scale_of(w);
    try {
      if (content_type.starts_with("application/json-patch+json")) {
        wanted = apply_json_patch(current, p);
      } else if (content_type.starts_with("application/merge-patch+json") ||
                 content_type.starts_with("application/strategic-merge-patch+json")) {
        wanted = apply_merge_patch(current, p);  // Scale has no lists to merge by key
      } else {
        throw ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media "
                       "types include: application/json-patch+json, "
                       "application/merge-patch+json, application/strategic-merge-patch+json");
      }
    } catch (const std::invalid_argument& e) {
      throw ApiError(422, "Invalid", e.what());
    }
  } else {
    throw ApiError(405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource");
  }
  const json& replicas = wanted.value("spec", json::object()).value("replicas", json());
  int64_t n = replicas.is_number_integer() ? replicas.get<int64_t>() : 0;
  if (n < 0) {
    throw invalid("Scale.autoscaling", r.name, "spec.replicas", "FieldValueInvalid",
                  "Invalid value: " + std::to_string(n) + ": must be greater than or equal to 0");
  }
  w["spec"]["replicas"] = n;
  // A resourceVersion in the Scale is a precondition on the workload (409 when stale).
  std::string rv = wanted.value("metadata", json::object()).value("resourceVersion", "");
  if (!rv.empty()) w["metadata"]["resourceVersion"] = rv;
  return scale_of(rest.update_object(*r.type, w));
}

}  // namespace lpk::kubesim
