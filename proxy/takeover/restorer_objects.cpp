// Takeover's handling of the session's restorer (restorer.hpp builds the objects): the heartbeat
// Lease and the restore-watch Job with its ServiceAccount, Role and RoleBinding, created before
// the workload changes and removed with the session's other objects.
#include "proxy/takeover/restorer.hpp"
#include "proxy/takeover/session_objects.hpp"
#include "proxy/takeover/session_record.hpp"
#include "proxy/takeover/takeover.hpp"

namespace lpk::proxy {

using nlohmann::json;

void Takeover::create_restorer(const TakeoverTarget& target, const TakeoverOptions& options,
                               const SessionOwner& owner) {
  if (options.orphan_timeout.count() == 0) return;
  RestorerSpec spec{target.workload, owner.id, options.agent_image, options.orphan_timeout,
                    target.route ? options.service : std::string()};
  const auto& ns = spec.workload.ns;
  auto create = [&](const std::string& path, const json& body) {
    try {
      return client_.create(path, body);
    } catch (const kube::ApiError& e) {
      if (e.code != 403) throw;
      throw WorkloadError("lpk may not create its restorer in namespace " + ns + " (" + e.what() +
                          "); it restores the workload if this machine goes away: ask for "
                          "`create` and `delete` on leases, jobs, serviceaccounts, roles and "
                          "rolebindings, or pass --orphan-timeout 0 to go without it");
    }
  };
  try {
    create(lease_path(ns), heartbeat_lease(spec, owner.host + "_" + owner.id,
                                           std::chrono::system_clock::now()));
    auto account = create(kube::resource_path("v1", ns, "serviceaccounts"),
                          restorer_service_account(spec));
    auto uid = account["metadata"].value("uid", "");
    create(rbac_path(ns, "roles"), restorer_role(spec, uid));
    create(rbac_path(ns, "rolebindings"), restorer_role_binding(spec, uid));
    create(kube::resource_path("batch/v1", ns, "jobs"), restorer_job(spec, uid));
  } catch (const std::exception&) {
    remove_restorer(ns, owner.id);  // nothing half-made stays behind
    throw;
  }
  progress_.step("restorer " + restorer_name(owner.id) + " restores " + spec.workload.describe() +
                 " if this session's heartbeat stops for " +
                 std::to_string(options.orphan_timeout.count()) + " s");
}

void Takeover::remove_restorer(const std::string& ns, const std::string& session_id) {
  auto name = restorer_name(session_id);
  remove_if_present(kube::resource_path("batch/v1", ns, "jobs", name), "Background");
  remove_if_present(rbac_path(ns, "rolebindings", name));
  remove_if_present(rbac_path(ns, "roles", name));
  remove_if_present(kube::resource_path("v1", ns, "serviceaccounts", name));
  remove_if_present(lease_path(ns, heartbeat_lease_name(session_id)));
}

void Takeover::remove_restorer_from_inside(const std::string& ns, const std::string& session_id) {
  auto name = restorer_name(session_id);
  remove_if_present(kube::resource_path("v1", ns, "configmaps", template_configmap_name(session_id)));
  remove_if_present(lease_path(ns, heartbeat_lease_name(session_id)));
  // One call for the rest: the Job (with this very pod), the Role and the RoleBinding are the
  // ServiceAccount's dependents, which the garbage collector removes. Deleting the Job first
  // would end this process before it got to the others, and the rights end with any of them.
  remove_if_present(kube::resource_path("v1", ns, "serviceaccounts", name), "Background");
}

}  // namespace lpk::proxy
