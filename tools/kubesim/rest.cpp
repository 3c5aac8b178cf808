#include "tools/kubesim/rest.hpp"

#include "tools/kubesim/apply.hpp"
#include "tools/kubesim/patch.hpp"
#include "tools/kubesim/selectors.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

std::vector<std::string> selectable_fields(const ResourceType& t) {
  std::vector<std::string> supported = {"metadata.name", "metadata.namespace"};
  if (t.plural == "pods") {
    supported.insert(supported.end(), {"status.phase", "spec.nodeName", "status.podIP",
                                       "spec.restartPolicy", "spec.serviceAccountName"});
  }
  if (t.plural == "secrets") supported.push_back("type");
  if (t.plural == "namespaces") supported.push_back("status.phase");
  if (t.plural == "events") {
    // The apiserver's event field set (pkg/registry/core/event/strategy.go ToSelectableFields).
    for (const char* f :
         {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
          "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
          "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}) {
      supported.push_back(f);
    }
  }
  return supported;
}

Rest::Rest(Store& store, AdmitOptions opts) : store_(store), opts_(std::move(opts)) {}

json Rest::get(const Route& r) const {
  auto obj = store_.get(r.type->plural, r.ns, r.name);
  if (!obj) throw not_found(r.type->plural, r.name, r.type->group);
  return *obj;
}

ListResult Rest::list(const ResourceType& t, const std::string& ns, const std::string& label_sel,
                      const std::string& field_sel) const {
  std::string why;
  auto labels = LabelSelector::parse(label_sel, &why);
  if (!labels) throw bad_request("unable to parse requirement: " + why);
  auto fields = parse_field_selector(field_sel, selectable_fields(t), &why);
  if (!fields) throw bad_request(why);
  ListResult out;
  out.resource_version = std::to_string(store_.resource_version());
  for (auto& o : store_.list(t.plural, ns)) {
    if (labels->matches(o["metadata"].value("labels", json::object())) &&
        fields_match(*fields, o)) {
      out.items.push_back(std::move(o));
    }
  }
  return out;
}

json Rest::decode(const Route& r, const std::string& body, bool strict,
                  std::vector<std::string>& warnings) const {
  json obj = json::parse(body, nullptr, false);
  if (obj.is_discarded()) {
    json probe = json::parse(body, nullptr, false, true);
    throw bad_request("couldn't get version/kind; json parse error: invalid JSON in body");
  }
  if (!obj.is_object()) {
    throw bad_request("couldn't get version/kind; json parse error: json: cannot unmarshal " +
                      std::string(obj.type_name()) +
                      " into Go value of type struct { APIVersion "
                      "string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
                      "\"json:\\\"kind,omitempty\\\"\" }");
  }
  const ResourceType& t = *r.type;
  std::string kind = obj.value("kind", "");
  std::string api_version = obj.value("apiVersion", "");
  // Like the apiserver's decoder, a body without kind or apiVersion takes them from the URL.
  if (kind.empty()) kind = t.kind;
  if (!api_version.empty() && api_version != t.api_version()) {
    throw bad_request("the API version in the data (" + api_version +
                      ") does not match the expected API version (" + t.api_version() + ")");
  }
  if (kind != t.kind) {
    throw bad_request("the object provided is unrecognized (must be of type " + t.kind +
                      "): no kind \"" + kind + "\" is registered for the " + t.plural +
                      " resource");
  }
  obj["apiVersion"] = t.api_version();
  obj["kind"] = t.kind;
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
  json& m = obj["metadata"];
  if (t.namespaced) {
    std::string ns = m.value("namespace", "");
    if (!ns.empty() && ns != r.ns) {
      throw bad_request(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
    m["namespace"] = r.ns;
  }
  for (const auto& f : unknown_fields(t, obj)) {
    if (strict) throw bad_request("strict decoding error: unknown field \"" + f + "\"");
    warnings.push_back("unknown field \"" + f + "\"");
  }
  return obj;
}

json Rest::create(const Route& r, const std::string& body, bool strict,
                  std::vector<std::string>& warnings, const std::string& manager) {
  json obj = decode(r, body, strict, warnings);
  if (!r.name.empty())
    throw ApiError(405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource");
  for (const char* f : {"uid", "resourceVersion", "creationTimestamp", "generation"}) {
    obj["metadata"].erase(f);
  }
  obj["metadata"].erase("managedFields");
  return create_object(*r.type, std::move(obj), manager);
}

json Rest::create_object(const ResourceType& t, json obj, const std::string& manager) {
  obj = admit(t, std::move(obj), std::nullopt, store_, opts_);
  if (!manager.empty()) obj = record_update(nullptr, std::move(obj), manager, t.api_version());
  return store_.create(t.plural, std::move(obj));
}

json Rest::update(const Route& r, const std::string& body, bool strict,
                  std::vector<std::string>& warnings, const std::string& manager) {
  json obj = decode(r, body, strict, warnings);
  std::string name = obj["metadata"].value("name", "");
  if (name != r.name) {
    throw bad_request("the name of the object (" + name + ") does not match the name on the URL (" +
                      r.name + ")");
  }
  json old = get(r);
  return write_update(r, std::move(obj), old, manager);
}

json Rest::write_update(const Route& r, json obj, const json& old, const std::string& manager) {
  bool status_only = r.sub == "status";
  // An update that leaves managedFields out keeps them (fieldmanager does the same).
  if (!obj["metadata"].contains("managedFields") && old["metadata"].contains("managedFields")) {
    obj["metadata"]["managedFields"] = old["metadata"]["managedFields"];
  }
  if (!status_only) obj = admit(*r.type, std::move(obj), old, store_, opts_);
  if (!status_only && !manager.empty()) {
    obj = record_update(old, std::move(obj), manager, r.type->api_version());
  }
  return store_.update(r.type->plural, std::move(obj), status_only);
}

json Rest::update_object(const ResourceType& t, json obj, bool status_only) {
  return store_.update(t.plural, std::move(obj), status_only);
}

json Rest::server_side_apply(const Route& r, const std::string& body, const PatchOptions& opts,
                             std::vector<std::string>& warnings) {
  // The apiserver's handler refuses these before it looks at the body.
  if (opts.field_manager.empty()) {
    throw bad_request("PATCH requests of type apply-patch+yaml require a fieldManager");
  }
  if (!r.sub.empty()) throw bad_request("kubesim applies server-side to main resources only");
  // kubectl sends JSON, which is YAML too; kubesim reads no other YAML.
  if (json::parse(body, nullptr, false).is_discarded()) {
    throw bad_request("kubesim reads apply configurations written as JSON only");
  }
  json config = decode(r, body, opts.strict, warnings);
  if (config["metadata"].value("name", "") != r.name) {
    throw bad_request("the name of the object (" + config["metadata"].value("name", "") +
                      ") does not match the name on the URL (" + r.name + ")");
  }
  auto live = store_.get(r.type->plural, r.ns, r.name);
  ApplyRequest req{opts.field_manager, opts.force, r.type->api_version()};
  json next;
  try {
    next = lpk::kubesim::server_side_apply(live ? *live : json(), config, req);
  } catch (const std::invalid_argument& e) {
    throw ApiError(422, "Invalid", e.what());
  }
  // Apply recorded its own ownership: no Update manager on top.
  if (!live) return create_object(*r.type, std::move(next));
  return write_update(r, std::move(next), *live, "");
}

json Rest::patch(const Route& r, const std::string& content_type, const std::string& body,
                 const PatchOptions& opts, std::vector<std::string>& warnings) {
  if (content_type.rfind("application/apply-patch+yaml", 0) == 0) {
    return server_side_apply(r, body, opts, warnings);
  }
  json old = get(r);
  json p = json::parse(body, nullptr, false);
  if (p.is_discarded()) throw bad_request("invalid JSON in patch body");
  json next;
  try {
    if (content_type.rfind("application/strategic-merge-patch+json", 0) == 0) {
      next = apply_strategic_merge_patch(old, p);
    } else if (content_type.rfind("application/merge-patch+json", 0) == 0) {
      if (!p.is_object()) throw bad_request("merge patch must be a JSON object");
      next = apply_merge_patch(old, p);
    } else if (content_type.rfind("application/json-patch+json", 0) == 0) {
      if (!p.is_array()) throw bad_request("json patch must be a JSON array");
      next = apply_json_patch(old, p);
    } else {
      throw ApiError(415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/apply-patch+yaml, application/strategic-merge-patch+json");
    }
  } catch (const std::invalid_argument& e) {
    throw ApiError(422, "Invalid", e.what());
  }
  if (!next.is_object() || next.value("kind", "") != r.type->kind || !next.contains("metadata") ||
      next["metadata"].value("name", "") != r.name) {
    throw ApiError(422, "Invalid", "patch changes the object's kind or name");
  }
  // A merge patch without a resourceVersion applies to the current object, whatever it is;
  // one with it, like a JSON patch that replaces it, is a precondition (409 when stale, as
  // the registry's update compares it).
  if (p.is_object() && (!p.contains("metadata") || !p["metadata"].is_object() ||
                        !p["metadata"].contains("resourceVersion"))) {
    next["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"];
  }
  return write_update(r, std::move(next), old, opts.field_manager);
}

void Rest::collect_dependents(const std::string& uid, bool orphan) {
  for (const auto& t : resource_types()) {
    for (const auto& o : store_.list(t.plural)) {
      for (const auto& ref : o["metadata"].value("ownerReferences", json::array())) {
        if (ref.value("uid", "") != uid) continue;
        Route dep{&t, o["metadata"].value("namespace", ""), o["metadata"]["name"], ""};
        if (orphan) {
          json copy = o;
          copy["metadata"].erase("ownerReferences");
          store_.update(t.plural, copy);
        } else if (store_.get(t.plural, dep.ns, dep.name)) {
          remove(dep, false);
        }
        break;
      }
    }
  }
}

json Rest::remove(const Route& r, bool orphan) {
  json obj = get(r);
  if (r.type->plural == "namespaces") {
    for (const auto& t : resource_types()) {
      if (!t.namespaced) continue;
      for (const auto& o : store_.list(t.plural, r.name)) {
        Route dep{&t, r.name, o["metadata"]["name"], ""};
        if (store_.get(t.plural, dep.ns, dep.name)) remove(dep, false);
      }
    }
  }
  if (r.type->plural == "pods" && graceful_pod_delete && graceful_pod_delete(obj)) {
    if (obj["metadata"].contains("deletionTimestamp")) return obj;
    obj["metadata"]["deletionTimestamp"] = now_rfc3339();
    obj["metadata"]["deletionGracePeriodSeconds"] =
        obj["spec"].value("terminationGracePeriodSeconds", 30);
    return store_.update("pods", obj);
  }
  json last = store_.remove(r.type->plural, r.ns, r.name);
  collect_dependents(last["metadata"].value("uid", ""), orphan);
  return last;
}

}  // namespace lpk::kubesim
