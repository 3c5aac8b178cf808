#include "proxy/takeover/restorer.hpp"
#include "proxy/takeover/route_objects.hpp"

#include <ctime>
#include <cstdio>

#include "kube/text.hpp"
#include "proxy/takeover/session_objects.hpp"

namespace lpk::proxy {

using kube::field;
using kube::text_of;
using nlohmann::json;

std::string heartbeat_lease_name(const std::string& session_id) {
  return "lpk-session-" + session_id;
}

std::string restorer_name(const std::string& session_id) { return "lpk-restorer-" + session_id; }

namespace restorer_detail {  // named: the unity build compiles it beside workload.cpp

constexpr const char* kRestorerComponent = "lpk-restorer";

json labels(const RestorerSpec& spec) {
  return {{kSessionLabel, spec.session_id},
          {"app.kubernetes.io/managed-by", "lpk"},
          {"app.kubernetes.io/component", kRestorerComponent}};
}

json metadata(const RestorerSpec& spec, const std::string& name,
              const std::string& account_uid = {}) {
  json meta = {{"name", name}, {"namespace", spec.workload.ns}, {"labels", labels(spec)}};
  if (!account_uid.empty()) {
    meta["ownerReferences"] = json::array({{{"apiVersion", "v1"},
                                            {"kind", "ServiceAccount"},
                                            {"name", restorer_name(spec.session_id)},
                                            {"uid", account_uid}}});
  }
  return meta;
}

json rule(const char* group, json resources, json verbs, json names = nullptr) {
  json r = {{"apiGroups", {group}}, {"resources", std::move(resources)}, {"verbs", std::move(verbs)}};
  if (!names.is_null()) r["resourceNames"] = std::move(names);
  return r;
}

}  // namespace restorer_detail

using restorer_detail::labels;
using restorer_detail::metadata;
using restorer_detail::rule;

json heartbeat_lease(const RestorerSpec& spec, const std::string& holder, SystemTime now) {
  auto at = micro_time(now);
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", metadata(spec, heartbeat_lease_name(spec.session_id))},
          {"spec",
           {{"holderIdentity", holder},
            {"leaseDurationSeconds", spec.orphan_timeout.count()},
            {"acquireTime", at},
            {"renewTime", at},
            {"leaseTransitions", 0}}}};
}

json lease_renewal(SystemTime now) { return {{"spec", {{"renewTime", micro_time(now)}}}}; }

json restorer_service_account(const RestorerSpec& spec) {
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", metadata(spec, restorer_name(spec.session_id))}};
}

namespace {

/// What leaving a route takes (Takeover::leave_route): the session's Deployment deleted, the
/// route's Lease, the Service updated, and when the session was the last, the router with its
/// rights and lpk's Service of the original pods deleted.
void add_route_rules(json& rules, const RestorerSpec& spec) {
  const auto& service = spec.route_service;
  const auto router = router_name(service);
  rules.push_back(rule("apps", {"deployments"}, {"delete"}, {spec.workload.name, router}));
  rules.push_back(rule("coordination.k8s.io", {"leases"}, {"create"}));
  rules.push_back(rule("coordination.k8s.io", {"leases"}, {"get", "delete"},
                       {route_lock_name(service)}));
  rules.push_back(rule("", {"services"}, {"list"}));
  rules.push_back(rule("", {"services"}, {"get", "update"}, {service}));
  rules.push_back(rule("", {"services"}, {"delete"}, {original_service_name(service), router}));
  rules.push_back(rule("", {"serviceaccounts"}, {"delete"}, {router}));
  rules.push_back(rule("rbac.authorization.k8s.io", {"roles", "rolebindings"}, {"delete"},
                       {router}));
}

}  // namespace

json restorer_role(const RestorerSpec& spec, const std::string& account_uid) {
  const auto& ref = spec.workload;
  const auto& id = spec.session_id;
  std::string group = group_version_of(ref.kind);
  group = group.find('/') == std::string::npos ? "" : group.substr(0, group.find('/'));
  json pod_verbs = ref.kind == WorkloadKind::deployment ? json{"list"} : json{"list", "delete"};
  if (ref.kind == WorkloadKind::pod) pod_verbs = {"get", "list", "create", "delete"};
  json rules = json::array();
  if (ref.kind != WorkloadKind::pod) {
    rules.push_back(rule(group.c_str(), {resource_of(ref.kind)}, {"get", "update", "patch"},
                         {ref.name}));
  }
  rules.push_back(rule("", {"pods"}, pod_verbs));
  if (!spec.route_service.empty()) add_route_rules(rules, spec);
  if (ref.kind == WorkloadKind::deployment) {
    // Restore deletes the agent's ReplicaSet, whose name the Deployment controller chose.
    rules.push_back(rule("apps", {"replicasets"}, {"list", "delete"}));
  }
  rules.push_back(rule("", {"configmaps"}, {"get", "delete"}, {template_configmap_name(id)}));
  rules.push_back(rule("", {"secrets"}, {"delete"}, {tunnel_secret_name(id)}));
  rules.push_back(rule("coordination.k8s.io", {"leases"}, {"get", "delete"},
                       {heartbeat_lease_name(id)}));
  rules.push_back(rule("", {"serviceaccounts"}, {"delete"}, {restorer_name(id)}));
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "Role"},
          {"metadata", metadata(spec, restorer_name(id), account_uid)},
          {"rules", rules}};
}

json restorer_role_binding(const RestorerSpec& spec, const std::string& account_uid) {
  auto name = restorer_name(spec.session_id);
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "RoleBinding"},
          {"metadata", metadata(spec, name, account_uid)},
          {"subjects",
           json::array({{{"kind", "ServiceAccount"}, {"name", name}, {"namespace", spec.workload.ns}}})},
          {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}}};
}

json restorer_job(const RestorerSpec& spec, const std::string& account_uid) {
  auto name = restorer_name(spec.session_id);
  json args = {"restore-watch",
               "--workload", std::string(to_string(spec.workload.kind)) + "/" + spec.workload.name,
               "--session", spec.session_id,
               "--orphan-timeout", std::to_string(spec.orphan_timeout.count()) + "s"};
  json container = {{"name", "restore-watch"},
                    {"image", spec.image},
                    {"command", {"lpk-agent"}},
                    {"args", args}};
  json pod_spec = {{"serviceAccountName", name},
                   // A crash restarts the watcher in place; the heartbeat's age is in the Lease.
                   {"restartPolicy", "OnFailure"},
                   {"containers", json::array({container})}};
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", metadata(spec, name, account_uid)},
          {"spec",
           {{"backoffLimit", 10},
            {"template", {{"metadata", {{"labels", labels(spec)}}}, {"spec", pod_spec}}}}}};
}

std::string micro_time(SystemTime t) {
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t seconds = micros / 1'000'000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];  // room for what GCC thinks buf may hold, so -Wformat-truncation stays quiet
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(micros % 1'000'000));
  return out;
}

std::optional<SystemTime> parse_micro_time(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  long long micros = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, ++digits) {
      if (digits < 6) micros = micros * 10 + (*rest - '0');
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) micros *= 10;
  }
  if (std::string(rest) != "Z") return std::nullopt;  // the API writes UTC only
  return std::chrono::system_clock::from_time_t(timegm(&tm)) + std::chrono::microseconds(micros);
}

std::optional<SystemTime> last_renewal(const json& lease) {
  const auto& spec = field(lease, "spec");
  for (const char* key : {"renewTime", "acquireTime"}) {
    if (auto t = parse_micro_time(text_of(field(spec, key)))) return t;
  }
  return parse_micro_time(text_of(field(field(lease, "metadata"), "creationTimestamp")));
}

bool HeartbeatObserver::stale(const json& lease, Clock::time_point now,
                              std::chrono::seconds timeout) {
  std::string renewal;
  if (!lease.is_null()) {
    auto at = last_renewal(lease);
    // Unreadable times: something renewed it in a form we cannot read; count its whole text.
    renewal = at ? micro_time(*at) : lease.dump();
  }
  if (!seen_ || *seen_ != renewal) {
    seen_ = renewal;
    since_ = now;
    return false;
  }
  return now - since_ > timeout;
}

}  // namespace lpk::proxy
