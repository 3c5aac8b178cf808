#include "tools/kubesim/protobuf_body.hpp"

#include <utility>

#include "tools/kubesim/protobuf_schemas.hpp"

namespace lpk::kubesim {

namespace {

using json = nlohmann::json;
using pb::Message;
using pb::sub;

void put(json& obj, const char* key, const std::string& v) {
  if (!v.empty()) obj[key] = v;
}

// authorization/v1: ResourceAttributes{namespace 1, verb 2, group 3, version 4, resource 5,
// subresource 6, name 7}, NonResourceAttributes{path 1, verb 2},
// SelfSubjectAccessReviewSpec{resourceAttributes 1, nonResourceAttributes 2}.
json access_review_spec(const Message& spec) {
  json out = json::object();
  if (spec.bytes.count(1)) {
    Message ra = sub(spec, 1);
    json r = json::object();
    const char* names[] = {"namespace", "verb",        "group", "version",
                           "resource",  "subresource", "name"};
    for (uint32_t f = 1; f <= 7; ++f) put(r, names[f - 1], ra.str(f));
    out["resourceAttributes"] = r;
  }
  if (spec.bytes.count(2)) {
    Message na = sub(spec, 2);
    json r = json::object();
    put(r, "path", na.str(1));
    put(r, "verb", na.str(2));
    out["nonResourceAttributes"] = r;
  }
  return out;
}

// authentication/v1 TokenRequestSpec{audiences 1, boundObjectRef 3, expirationSeconds 4},
// BoundObjectReference{kind 1, apiVersion 2, name 3, uid 4}.
json token_request_spec(const Message& spec) {
  json out = {{"audiences", spec.strs(1)}};
  if (auto secs = spec.num(4)) out["expirationSeconds"] = int64_t(*secs);
  if (spec.bytes.count(3)) {
    Message ref = sub(spec, 3);
    json r = json::object();
    put(r, "kind", ref.str(1));
    put(r, "apiVersion", ref.str(2));
    put(r, "name", ref.str(3));
    put(r, "uid", ref.str(4));
    out["boundObjectRef"] = r;
  }
  return out;
}

// The stored kinds `kubectl create` sends, decoded strictly (protobuf_wire.hpp).
const pb::Schema* stored_kind(std::string_view api_version, std::string_view kind) {
  static const std::pair<std::pair<std::string_view, std::string_view>, const pb::Schema*>
      kKinds[] = {
          {{"v1", "ConfigMap"}, &pb::kConfigMap},
          {{"v1", "Secret"}, &pb::kSecret},
          {{"v1", "Namespace"}, &pb::kNamespace},
          {{"v1", "Service"}, &pb::kService},
          {{"v1", "ServiceAccount"}, &pb::kServiceAccount},
          {{"apps/v1", "Deployment"}, &pb::kDeployment},
          {{"batch/v1", "Job"}, &pb::kJob},
          {{"rbac.authorization.k8s.io/v1", "Role"}, &pb::kRole},
          {{"rbac.authorization.k8s.io/v1", "RoleBinding"}, &pb::kRoleBinding},
          {{"rbac.authorization.k8s.io/v1", "ClusterRole"}, &pb::kClusterRole},
          {{"rbac.authorization.k8s.io/v1", "ClusterRoleBinding"}, &pb::kClusterRoleBinding},
      };
  for (const auto& [key, schema] : kKinds) {
    if (key.first == api_version && key.second == kind) return schema;
  }
  return nullptr;
}

}  // namespace

std::optional<json> decode_protobuf_body(std::string_view body) {
  constexpr std::string_view kMagic("k8s\0", 4);
  if (body.substr(0, 4) != kMagic) return std::nullopt;
  // runtime.Unknown{typeMeta 1 {apiVersion 1, kind 2}, raw 2, contentEncoding 3, contentType 4}
  auto unknown = pb::parse(body.substr(4));
  // A contentEncoding (3) would mean raw is not the object itself.
  if (!unknown || !unknown->str(3).empty()) return std::nullopt;
  Message type = sub(*unknown, 1);
  auto raw = unknown->bytes.find(2);
  if (raw == unknown->bytes.end()) return std::nullopt;
  std::string api_version = type.str(1), kind = type.str(2);
  if (const auto* schema = stored_kind(api_version, kind)) {
    auto decoded = pb::decode(raw->second, *schema);
    if (!decoded) return std::nullopt;
    (*decoded)["apiVersion"] = api_version;
    (*decoded)["kind"] = kind;
    return decoded;
  }
  auto object = pb::parse(raw->second);  // views into body, which outlives them
  if (!object) return std::nullopt;
  json out = {{"apiVersion", api_version}, {"kind", kind}};
  // Every kind here: metadata 1, spec 2, status 3.
  Message spec = sub(*object, 2);
  if (kind == "SelfSubjectAccessReview") {
    out["spec"] = access_review_spec(spec);
  } else if (kind == "SelfSubjectRulesReview") {
    out["spec"] = json::object();
    put(out["spec"], "namespace", spec.str(1));
  } else if (kind == "TokenRequest") {
    out["spec"] = token_request_spec(spec);
  } else {
    return std::nullopt;
  }
  return out;
}

}  // namespace lpk::kubesim
