#pragma once
// The restorer's loop (`lpk-agent restore-watch`, run by the Job restorer.hpp describes): reads
// the session's heartbeat Lease every few seconds; once it is older than the orphan timeout,
// restores the workload exactly as `lpk-proxy restore` does (Takeover::restore), then deletes
// the session's objects and the restorer itself. A session that ended normally removes the
// restorer before that happens. Blocking; run on the main thread.

#include <atomic>
#include <chrono>
#include <string>

#include "kube/client.hpp"
#include "proxy/control/console.hpp"
#include "proxy/takeover/workload.hpp"

namespace lpk::proxy {

struct RestoreWatchOptions {
  WorkloadRef workload;
  std::string session_id;
  std::chrono::seconds orphan_timeout{600};
  std::chrono::milliseconds poll{2000};
  std::chrono::seconds rollout_timeout{300};
};

/// What restore-watch did, for its exit code and its last line.
enum class RestoreWatchEnd {
  restored,       ///< the heartbeat went stale: restored and cleaned up
  not_ours,       ///< the workload no longer carries this session: cleaned up only
  stopped,        ///< `stop` was set (SIGTERM: the session removed the restorer)
};

/// Watches and restores; throws (kube::ApiError, WorkloadError) when a step fails, so that the
/// Job restarts the watcher.
RestoreWatchEnd watch_and_restore(kube::Client& client, console::Progress& progress,
                                  const RestoreWatchOptions& options,
                                  const std::atomic<bool>& stop);

}  // namespace lpk::proxy
