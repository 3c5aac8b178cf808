#include "tools/kubesim/auth_api.hpp"

#include <ctime>

#include "tools/kubesim/rbac.hpp"
#include "tools/kubesim/status.hpp"
#include "tools/kubesim/tokens.hpp"

namespace lpk::kubesim {

namespace {

json parse_body(const std::string& body, const std::string& kind) {
  json obj = json::parse(body, nullptr, false);
  if (!obj.is_object()) throw bad_request("couldn't get version/kind; json parse error");
  if (obj.value("kind", kind) != kind) {
    throw bad_request("the object provided is unrecognized (must be of type " + kind + ")");
  }
  return obj;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

json self_subject_access_review(const Store& store, const std::string& body, const Identity& who) {
  json review = parse_body(body, "SelfSubjectAccessReview");
  const json& spec = review.value("spec", json::object());
  AuthzAttributes a;
  a.user = who.user;
  a.groups = who.groups;
  if (spec.contains("resourceAttributes")) {
    const json& ra = spec["resourceAttributes"];
    a.verb = ra.value("verb", "");
    a.group = ra.value("group", "");
    a.resource = ra.value("resource", "");
    a.subresource = ra.value("subresource", "");
    a.ns = ra.value("namespace", "");
    a.name = ra.value("name", "");
  } else if (spec.contains("nonResourceAttributes")) {
    a.resource_request = false;
    a.verb = spec["nonResourceAttributes"].value("verb", "");
    a.path = spec["nonResourceAttributes"].value("path", "");
  } else {
    throw invalid("SelfSubjectAccessReview", "", "spec.resourceAttributes", "FieldValueRequired",
                  "Required value: exactly one of nonResourceAttributes or resourceAttributes "
                  "must be specified");
  }
  AuthzDecision d = authorize(store, a);
  json status = {{"allowed", d.allowed}};
  if (!d.reason.empty()) status["reason"] = d.reason;
  return {{"kind", "SelfSubjectAccessReview"},
          {"apiVersion", "authorization.k8s.io/v1"},
          {"metadata", {{"creationTimestamp", nullptr}}},
          {"spec", spec},
          {"status", status}};
}

json self_subject_rules_review(const Store& store, const std::string& body, const Identity& who) {
  json review = parse_body(body, "SelfSubjectRulesReview");
  json spec = review.value("spec", json::object());
  std::string ns = spec.value("namespace", "");
  json status = rules_review_status(store, who.user, who.groups, ns);
  // system:masters is allowed by its own authorizer, which lists no rules; the bootstrap
  // binding of cluster-admin to the group is what real clusters show for it.
  return {{"kind", "SelfSubjectRulesReview"},
          {"apiVersion", "authorization.k8s.io/v1"},
          {"metadata", {{"creationTimestamp", nullptr}}},
          {"spec", spec},
          {"status", status}};
}

json token_request(const Store& store, TokenIssuer& issuer, const Route& r,
                   const std::string& body) {
  json req = parse_body(body, "TokenRequest");
  auto sa = store.get("serviceaccounts", r.ns, r.name);
  if (!sa) throw not_found("serviceaccounts", r.name);
  json spec = req.value("spec", json::object());
  int64_t seconds = spec.value("expirationSeconds", int64_t{3600});
  if (seconds < 600) {
    throw invalid("TokenRequest", r.name, "spec.expirationSeconds", "FieldValueInvalid",
                  "Invalid value: " + std::to_string(seconds) +
                      ": may not specify a duration less than 10 minutes");
  }
  TokenSubject s;
  s.ns = r.ns;
  s.name = r.name;
  s.uid = (*sa)["metadata"].value("uid", "");
  s.expiration_seconds = seconds;
  for (const auto& a : spec.value("audiences", json::array())) s.audiences.push_back(a);
  if (s.audiences.empty()) s.audiences.push_back(kApiAudience);
  const json& bound = spec.value("boundObjectRef", json());
  if (bound.is_object() && bound.value("kind", "") == "Pod") {
    auto pod = store.get("pods", r.ns, bound.value("name", ""));
    if (!pod) throw not_found("pods", bound.value("name", ""));
    s.pod_name = bound.value("name", "");
    s.pod_uid = (*pod)["metadata"].value("uid", "");
  }
  std::chrono::system_clock::time_point expires;
  std::string token = issuer.issue(s, &expires);
  spec["audiences"] = s.audiences;
  spec["expirationSeconds"] = seconds;
  if (!spec.contains("boundObjectRef")) spec["boundObjectRef"] = nullptr;
  return {{"kind", "TokenRequest"},
          {"apiVersion", "authentication.k8s.io/v1"},
          {"metadata",
           {{"name", r.name}, {"namespace", r.ns}, {"creationTimestamp", now_rfc3339()}}},
          {"spec", spec},
          {"status", {{"token", token}, {"expirationTimestamp", rfc3339(expires)}}}};
}

}  // namespace lpk::kubesim
