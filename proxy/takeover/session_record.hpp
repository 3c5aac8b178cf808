#pragma once
// Who changed a workload, and the record a session keeps on this machine until it has put the
// workload back: `lpk-proxy restore` walks the records of sessions whose process is gone.
//
//   record    <state>/sessions/<id>.json (mode 0600): owner, workload, kubeconfig, context
//   in the workload: the kSessionAnnotation holds the owner (workload.hpp)

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proxy/takeover/workload.hpp"

namespace lpk::proxy {

/// Who is changing a workload: stored in kSessionAnnotation and in the state record.
struct SessionOwner {
  std::string id;
  std::string host;
  int pid = 0;
  std::string started;  ///< RFC 3339
  std::string process_start;  ///< the process's start time (clock ticks since boot): tells a
                              ///< reused pid from the session's own
  nlohmann::json to_json() const;
  static SessionOwner from_json(const nlohmann::json& j);
  static SessionOwner current(const std::string& id);
  bool on_this_host() const;
  /// True when this machine's process `pid` is the session's and is alive (not a zombie, not
  /// a later process that reused the pid); only meaningful for this host.
  bool alive_here() const;
};

/// A record of a session that changed the cluster, kept until the workload is restored.
struct SessionRecord {
  SessionOwner owner;
  WorkloadRef workload;
  std::string kubeconfig;  ///< as given (may be empty: the default rules)
  std::string context;
  nlohmann::json to_json() const;
  static SessionRecord from_json(const nlohmann::json& j);
  std::filesystem::path path() const;  ///< <state>/sessions/<id>.json
  void save() const;                   ///< mode 0600; throws std::runtime_error
  void erase() const;
  static std::vector<SessionRecord> load_all();
};

}  // namespace lpk::proxy
