// Takeover's side of header-routed sessions (route_objects.hpp builds the objects): the
// session's agent Deployment, the router shared by every routed session of a service, the
// Service pointed at the router and back. Two developers may join or leave one service's route
// at the same moment: every change of the route runs under a Lease of its own (RouteLock), so
// that the first to join and the last to leave never cross.
#include <algorithm>
#include <thread>

#include "kube/text.hpp"
#include "proxy/takeover/restorer.hpp"
#include "proxy/takeover/session_objects.hpp"
#include "proxy/takeover/takeover.hpp"

namespace lpk::proxy {

using nlohmann::json;
using namespace std::chrono_literals;
using kube::field;
using kube::text_of;

namespace {

std::string service_path(const std::string& ns, const std::string& name = {}) {
  return kube::resource_path("v1", ns, "services", name);
}

/// Held while one session changes a service's route: a Lease created on entry (creation is
/// the atomic step; a second session waits for the first to delete it) and deleted on exit. A
/// holder that died mid-change leaves a Lease that expires after kHeld.
class RouteLock {
 public:
  static constexpr auto kHeld = 60s;

  RouteLock(kube::Client& client, const std::string& ns, const std::string& service,
            const std::string& holder, const std::atomic<bool>* cancel)
      : client_(client), path_(lease_path(ns, route_lock_name(service))) {
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", route_lock_name(service)},
                                {"namespace", ns},
                                {"labels", {{"app.kubernetes.io/managed-by", "lpk"}}}}},
                  {"spec", {{"holderIdentity", holder},
                            {"leaseDurationSeconds", kHeld.count()}}}};
    auto deadline = std::chrono::steady_clock::now() + 2 * kHeld;
    for (;;) {
      auto now = std::chrono::system_clock::now();
      lease["spec"]["acquireTime"] = lease["spec"]["renewTime"] = micro_time(now);
      try {
        client_.create(lease_path(ns), lease);
        return;
      } catch (const kube::ApiError& e) {
        if (e.code != 409) throw;
      }
      if (expired(now)) continue;
      if ((cancel && *cancel) || std::chrono::steady_clock::now() > deadline) {
        throw WorkloadError("another lpk session is changing the route of service " + service +
                            "; try again in a minute");
      }
      std::this_thread::sleep_for(100ms);
    }
  }
  ~RouteLock() {
    try {
      client_.remove(path_);
    } catch (const std::exception&) {
      // It expires by itself.
    }
  }
  RouteLock(const RouteLock&) = delete;
  RouteLock& operator=(const RouteLock&) = delete;

 private:
  /// True (after deleting it) when the Lease is older than kHeld: its holder is gone.
  bool expired(std::chrono::system_clock::time_point now) {
    try {
      auto held = client_.get(path_);
      auto renewed = parse_micro_time(text_of(field(field(held, "spec"), "renewTime")));
      if (renewed && now - *renewed < kHeld) return false;
      client_.remove(path_);
      return true;
    } catch (const kube::ApiError& e) {
      return e.code == 404;  // released meanwhile: try again at once
    }
  }

  kube::Client& client_;
  std::string path_;
};

/// A Service port that says it carries HTTP (appProtocol, or a name as Istio reads it).
bool declared_http(const json& port) {
  auto protocol = text::ascii_lower(text_of(field(port, "appProtocol")));
  auto name = text::ascii_lower(text_of(field(port, "name")));
  for (const char* p : {"http", "grpc", "h2c", "kubernetes.io/h2c", "kubernetes.io/ws"}) {
    std::string_view want(p);
    if (protocol == want || name == want || name.rfind(want.data() + std::string("-"), 0) == 0) {
      return true;
    }
  }
  return protocol.rfind("http", 0) == 0;
}

std::string session_named(const json& object) {
  auto owner = SessionOwner::from_json(json::parse(
      text_of(field(field(field(object, "metadata"), "annotations"), kSessionAnnotation)),
      nullptr, false));
  return owner.id.empty() ? std::string("(unknown)") : owner.id;
}

}  // namespace

TakeoverTarget Takeover::routed_target(const TakeoverOptions& options,
                                       const std::string& session_id) {
  auto target = locate(options);
  if (carries_original(target.object)) {
    throw WorkloadError(target.workload.describe() + " is replaced by lpk session " +
                        session_named(target.object) + ", which does not route by header; "
                        "end that session first, or connect without --route-header");
  }
  for (const auto& [id, member] : route_members(target.service)) {
    if (member.route.header == options.route->header &&
        member.route.value == options.route->value) {
      throw WorkloadError("lpk session " + id + " already routes requests with " +
                          member.route.header + ": " + member.route.value + " of service " +
                          options.service + "; choose another value (--route-header " +
                          member.route.header + "=VALUE)");
    }
  }
  for (const auto& port : field(field(target.service, "spec"), "ports")) {
    if (text_of(field(port, "protocol")) == "UDP" || declared_http(port)) continue;
    std::fprintf(stderr, "lpk-proxy: warning: port %s of service %s is not declared HTTP (no "
                 "appProtocol or http/grpc name); connections the router cannot read as HTTP go "
                 "to the original pods whole\n", field(port, "port").dump().c_str(),
                 options.service.c_str());
  }
  target.source = target.workload;
  target.source_template = kube::template_of(target.workload.kind, target.object);
  target.workload = {WorkloadKind::deployment, options.ns,
                     routed_deployment_name(options.service, session_id)};
  target.object = json();
  target.route = options.route;
  return target;
}

void Takeover::install_routed_agent(TakeoverTarget& target, const TakeoverOptions& options,
                                    const SessionOwner& owner) {
  AgentSpec agent = agent_for(target, options, owner);
  if (!options.tunnel_secret.empty()) agent.secret_name = tunnel_secret_name(owner.id);
  target.tunnel_port = agent.tunnel_port;
  const auto& ref = target.workload;
  create_restorer(target, options, owner);
  progress_.step("starting " + agent.image + " as " + ref.describe() + " from the template of " +
                 target.source.describe() + " (requests with " + target.route->header + ": " +
                 target.route->value + " go to it; " + target.source.describe() +
                 " keeps serving the rest)");
  try {
    create_agent_deployment(target, options, owner,
                            routed_deployment(ref.ns, options.service, owner.id, *target.route,
                                              target.source_template, target.container.name,
                                              agent),
                            "a routed session runs its agent in a Deployment of its own");
  } catch (const std::exception&) {
    remove_restorer(ref.ns, owner.id);
    throw;
  }
  RouteLock lock(client_, ref.ns, options.service, owner.id, cancel_);
  auto service = client_.get(service_path(ref.ns, options.service));
  if (route_members(service).empty()) ensure_router(service, target, options);
  update_service(ref.ns, options.service, [&](const json& fresh) {
    auto members = route_members(fresh);
    members[owner.id] = {*target.route, ref.name, owner.to_json().dump()};
    return with_route_members(fresh, members);
  });
  progress_.step("service " + options.service + " routes requests with " + target.route->header +
                 ": " + target.route->value + " to this session");
}

void Takeover::ensure_router(const json& service, const TakeoverTarget& target,
                             const TakeoverOptions& options) {
  const auto& ns = target.workload.ns;
  RouterSpec spec;
  spec.ns = ns;
  spec.service = options.service;
  spec.image = options.agent_image;
  spec.selector = original_selector(service);
  spec.ports = routed_ports(target.source_template["spec"], target.container.name,
                            target.container.routes);
  spec.admin_port = router_admin_port(spec.ports);
  progress_.step("starting the router of service " + options.service + " (" +
                 router_name(options.service) + ", shared by every routed session)");
  auto original = create_or_reuse(service_path(ns), original_service(service, spec.ports));
  spec.original_cluster_ip = text_of(field(field(original, "spec"), "clusterIP"));
  if (spec.original_cluster_ip == "None") spec.original_cluster_ip.clear();
  create_or_reuse(service_path(ns), router_admin_service(spec));
  create_or_reuse(kube::resource_path("v1", ns, "serviceaccounts"), router_service_account(spec));
  create_or_reuse(rbac_path(ns, "roles"), router_role(spec));
  create_or_reuse(rbac_path(ns, "rolebindings"), router_role_binding(spec));
  WorkloadRef router{WorkloadKind::deployment, ns, router_name(options.service)};
  create_or_reuse(kube::resource_path("apps/v1", ns, "deployments"), router_deployment(spec));
  try {
    wait_rollout(router, options.rollout_timeout,
                 [](const json& pods) {
                   return !pods.empty() && std::all_of(pods.begin(), pods.end(), kube::pod_ready);
                 },
                 "router of service " + options.service, [](const json&) { return true; });
  } catch (const std::exception&) {
    remove_router(ns, options.service);
    throw;
  }
}

json Takeover::create_or_reuse(const std::string& path, const json& body) {
  auto name = text_of(field(field(body, "metadata"), "name"));
  auto deadline = std::chrono::steady_clock::now() + 120s;
  for (;;) {
    try {
      return client_.create(path, body);
    } catch (const kube::ApiError& e) {
      if (e.code != 409) throw;
    }
    try {
      auto existing = client_.get(path + "/" + name);
      if (field(field(existing, "metadata"), "deletionTimestamp").is_null()) return existing;
    } catch (const kube::ApiError& e) {
      if (e.code != 404) throw;
      continue;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw WorkloadError(path + "/" + name + " is being deleted and was not gone within 120 s");
    }
    std::this_thread::sleep_for(200ms);
  }
}

void Takeover::update_service(const std::string& ns, const std::string& service,
                              const std::function<json(const json&)>& change) {
  for (int attempt = 0;; ++attempt) {
    auto fresh = client_.get(service_path(ns, service));
    auto changed = change(fresh);
    // Leaving a route the session never joined (its join failed before that) changes nothing.
    if (changed == fresh) return;
    try {
      client_.replace(service_path(ns, service), changed);
      return;
    } catch (const kube::ApiError& e) {
      if (e.code != 409 || attempt == 10) throw;  // someone else wrote in between
    }
  }
}

void Takeover::leave_route(const std::string& ns, const std::string& service,
                           const std::string& session_id) {
  RouteLock lock(client_, ns, service, session_id, nullptr);
  bool last = false;
  try {
    update_service(ns, service, [&](const json& fresh) {
      auto members = route_members(fresh);
      members.erase(session_id);
      last = members.empty();
      return with_route_members(fresh, members);
    });
  } catch (const kube::ApiError& e) {
    if (e.code != 404) throw;
    last = true;  // the Service itself is gone: nothing routes it any more
  }
  if (!last) {
    progress_.step("session " + session_id + " no longer routes service " + service +
                   "; other sessions still do");
    return;
  }
  progress_.step("service " + service + " selects its own pods again");
  remove_router(ns, service);
}

void Takeover::remove_router(const std::string& ns, const std::string& service) {
  auto name = router_name(service);
  remove_if_present(kube::resource_path("apps/v1", ns, "deployments", name), "Foreground");
  remove_if_present(service_path(ns, original_service_name(service)));
  remove_if_present(service_path(ns, name));
  remove_if_present(rbac_path(ns, "rolebindings", name));
  remove_if_present(rbac_path(ns, "roles", name));
  remove_if_present(kube::resource_path("v1", ns, "serviceaccounts", name));
  kube::ListOptions router_pods;
  router_pods.label_selector = std::string(kRouterLabel) + "=" + service;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  for (;;) {
    auto pods = client_.list(kube::resource_path("v1", ns, "pods"), router_pods);
    if (pods.value("items", json::array()).empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      throw WorkloadError("the router of service " + service + " was not gone within 120 s; "
                          "`kubectl get pods -n " + ns + " -l " + router_pods.label_selector +
                          "` shows it");
    }
    std::this_thread::sleep_for(200ms);
  }
  progress_.step("router " + name + " removed");
}

void Takeover::prune_routes(const std::string& ns) {
  auto services = client_.list(service_path(ns));
  for (const auto& service : services.value("items", json::array())) {
    const auto& meta = field(service, "metadata");
    auto service_ns = text_of(field(meta, "namespace"));
    for (const auto& [id, member] : route_members(service)) {
      try {
        client_.get(kube::resource_path("apps/v1", service_ns, "deployments", member.deployment));
        continue;
      } catch (const kube::ApiError& e) {
        if (e.code != 404) throw;
      }
      progress_.step("lpk session " + id + " routed service " + text_of(field(meta, "name")) +
                     " and is gone");
      leave_route(service_ns, text_of(field(meta, "name")), id);
    }
  }
  // A router whose Service no session routes: its session died between making it and joining.
  kube::ListOptions routers;
  routers.label_selector = kRouterLabel;
  auto deployments = client_.list(kube::resource_path("apps/v1", ns, "deployments"), routers);
  for (const auto& d : deployments.value("items", json::array())) {
    const auto& meta = field(d, "metadata");
    auto router_ns = text_of(field(meta, "namespace"));
    auto service = text_of(field(field(meta, "labels"), kRouterLabel));
    RouteLock lock(client_, router_ns, service, "restore", cancel_);
    json current;
    try {
      current = client_.get(service_path(router_ns, service));
    } catch (const kube::ApiError& e) {
      if (e.code != 404) throw;
    }
    if (!route_members(current).empty()) continue;
    progress_.step("removing the router of service " + service + ", which no session routes");
    remove_router(router_ns, service);
  }
}

}  // namespace lpk::proxy
