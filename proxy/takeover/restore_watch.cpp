#include "proxy/takeover/restore_watch.hpp"

#include <thread>

#include "proxy/takeover/restorer.hpp"
#include "proxy/takeover/session_record.hpp"
#include "proxy/takeover/takeover.hpp"

namespace lpk::proxy {

using nlohmann::json;

namespace {

/// The id of the session whose annotation `ref` carries; "" when none (or it is gone).
std::string session_on(kube::Client& client, const WorkloadRef& ref) {
  json object;
  try {
    object = client.get(ref.path());
  } catch (const kube::ApiError& e) {
    if (e.code == 404) return {};
    throw;
  }
  auto annotations = object["metadata"].value("annotations", json::object());
  return SessionOwner::from_json(
             json::parse(annotations.value(kSessionAnnotation, "{}"), nullptr, false))
      .id;
}

/// True once the heartbeat has not been renewed for the orphan timeout, as this restorer has
/// seen it. A missing Lease counts from when it went missing: someone deleted it, and the
/// session may still be alive.
bool heartbeat_gone(kube::Client& client, console::Progress& progress,
                    const RestoreWatchOptions& options, HeartbeatObserver& observer,
                    bool& missing) {
  json lease;
  try {
    lease = client.get(kube::resource_path("coordination.k8s.io/v1", options.workload.ns,
                                           "leases", heartbeat_lease_name(options.session_id)));
  } catch (const kube::ApiError& e) {
    if (e.code != 404) throw;
  }
  const bool was_missing = missing;
  missing = lease.is_null();
  if (missing && !was_missing) {
    progress.step("the heartbeat Lease " + heartbeat_lease_name(options.session_id) +
                  " is missing; its age counts from now");
  }
  return observer.stale(lease, HeartbeatObserver::Clock::now(), options.orphan_timeout);
}

}  // namespace

RestoreWatchEnd watch_and_restore(kube::Client& client, console::Progress& progress,
                                  const RestoreWatchOptions& options,
                                  const std::atomic<bool>& stop) {
  const auto& ref = options.workload;
  progress.step("watching the heartbeat of lpk session " + options.session_id + " for " +
                ref.describe() + " (orphan timeout " +
                std::to_string(options.orphan_timeout.count()) + " s)");
  HeartbeatObserver observer;
  bool missing = false;  // the Lease was missing at the last look (said once)
  for (;;) {
    try {
      if (heartbeat_gone(client, progress, options, observer, missing)) break;
    } catch (const kube::ApiError& e) {
      // The API server unreachable or failing for a moment is not the session's end; a refusal
      // (403, 401) is a fault of the restorer's own, which restarting cannot fix either.
      if (e.code != 0 && e.code < 500) throw;
      progress.step(std::string("reading the heartbeat: ") + e.what() + "; trying again");
    }
    for (auto slept = std::chrono::milliseconds(0); slept < options.poll;
         slept += std::chrono::milliseconds(100)) {
      if (stop.load()) return RestoreWatchEnd::stopped;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  Takeover takeover(client, progress);
  takeover.set_inside_restorer(true);
  auto end = RestoreWatchEnd::not_ours;
  if (session_on(client, ref) == options.session_id) {
    progress.step("the heartbeat of lpk session " + options.session_id + " is older than " +
                  std::to_string(options.orphan_timeout.count()) + " s: its machine is gone");
    takeover.restore(ref, options.rollout_timeout);
    end = RestoreWatchEnd::restored;
  } else {
    progress.step(ref.describe() + " no longer runs lpk session " + options.session_id +
                  "'s agent; nothing to restore");
  }
  takeover.remove_tunnel_secret(ref.ns, options.session_id);
  takeover.remove_restorer_from_inside(ref.ns, options.session_id);
  return end;
}

}  // namespace lpk::proxy
