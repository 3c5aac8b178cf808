#pragma once
// The restorer of a `connect` session, as pure functions over API objects: the heartbeat Lease
// lpk-proxy renews while the session runs, and the Job (with its own ServiceAccount, Role and
// RoleBinding) that runs `lpk-agent restore-watch` in the workload's namespace and restores the
// workload once the heartbeat is older than the orphan timeout (the developer's machine is
// gone: lid closed, battery, kill -9).
//
// Ownership: the Role, the RoleBinding and the Job are owned by the ServiceAccount, so that the
// restorer, whose rights (and pod) end the moment it deletes any of them, removes them all with
// one last call, deleting the ServiceAccount (the garbage collector takes its dependents).

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "proxy/takeover/workload.hpp"

namespace lpk::proxy {

using SystemTime = std::chrono::system_clock::time_point;

/// The heartbeat Lease of session `id` ("lpk-session-<id>", as its tunnel Secret).
std::string heartbeat_lease_name(const std::string& session_id);
/// The restorer's Job, ServiceAccount, Role and RoleBinding ("lpk-restorer-<id>").
std::string restorer_name(const std::string& session_id);

/// What the restorer of one session needs to know.
struct RestorerSpec {
  WorkloadRef workload;
  std::string session_id;
  std::string image = "lpk/lpk-agent:dev";  ///< the agent's image: the restorer is lpk-agent
  std::chrono::seconds orphan_timeout{600};
  /// A routed session's: the Service it routes (route_objects.hpp), which the restorer takes
  /// the session out of, putting the Service back and removing the router when it was the last.
  std::string route_service;
};

/// The heartbeat Lease as client-go's leader election writes one: holderIdentity,
/// leaseDurationSeconds (the orphan timeout), acquireTime and renewTime (MicroTime) at `now`.
nlohmann::json heartbeat_lease(const RestorerSpec& spec, const std::string& holder,
                               SystemTime now);
/// The merge patch that renews it at `now`.
nlohmann::json lease_renewal(SystemTime now);

nlohmann::json restorer_service_account(const RestorerSpec& spec);
/// What restoring this one workload needs and nothing else: get and update it by name, list
/// (and, where restore deletes them, delete) its pods and old ReplicaSets, get and delete the
/// session's ConfigMap, Secret and Lease by name, delete its own ServiceAccount by name (the
/// Job, Role and RoleBinding go with it).
/// `account_uid` makes the ServiceAccount its owner.
nlohmann::json restorer_role(const RestorerSpec& spec, const std::string& account_uid);
nlohmann::json restorer_role_binding(const RestorerSpec& spec, const std::string& account_uid);
/// The Job running `lpk-agent restore-watch` as the restorer's ServiceAccount.
nlohmann::json restorer_job(const RestorerSpec& spec, const std::string& account_uid);

/// "2026-12-06T15:44:32.123456Z", the MicroTime form of renewTime.
std::string micro_time(SystemTime t);
/// A MicroTime or Time (RFC 3339, UTC, optional fraction); nullopt when unreadable.
std::optional<SystemTime> parse_micro_time(const std::string& text);

/// When the Lease was last renewed: renewTime, else acquireTime, else its creationTimestamp;
/// nullopt when none is readable.
std::optional<SystemTime> last_renewal(const nlohmann::json& lease);

/// The restorer's own view of a heartbeat, as client-go's leader election keeps one: when it
/// last saw the Lease's renewal change, on its own monotonic clock. The developer's clock and
/// the pod's need not agree (a laptop minutes behind would otherwise look gone at once).
class HeartbeatObserver {
 public:
  using Clock = std::chrono::steady_clock;
  /// `lease` as read now (null: it is missing). True once nothing about its renewal has changed
  /// for longer than `timeout` of this observer's own time. The first look starts the count.
  bool stale(const nlohmann::json& lease, Clock::time_point now, std::chrono::seconds timeout);

 private:
  std::optional<std::string> seen_;  ///< the renewal last seen ("" for a missing Lease)
  Clock::time_point since_{};
};

}  // namespace lpk::proxy
