#pragma once
// The Deployment controller's sync of one deployment (internal to controllers/): one
// object per pass, methods named after k/k pkg/controller/deployment's functions.

#include <string>
#include <vector>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/events.hpp"

namespace lpk::kubesim::deploy {

using json = nlohmann::json;

inline const EventSource kDeploymentSource{"deployment-controller", ""};

inline const ResourceType& kRs() { return resource_by_plural("replicasets"); }
inline const ResourceType& kDeploy() { return resource_by_plural("deployments"); }
inline std::string uid_of(const json& obj) { return obj["metadata"].value("uid", ""); }
inline std::string name_of(const json& obj) { return obj["metadata"].value("name", ""); }
/// The sets with spec.replicas > 0 (FilterActiveReplicaSets).
std::vector<json> active_sets(const std::vector<json>& sets);
/// sets plus rs, unless rs is null.
std::vector<json> with(std::vector<json> sets, const json& rs);

class DeploymentSync {
 public:
  DeploymentSync(Rest& rest, EventRecorder& events, json d)
      : rest_(rest), events_(events), d_(std::move(d)), sets_(owned(rest, "replicasets", d_)) {}

  void run();

 private:
  struct Sets {
    json fresh;  // the new set, null when there is none
    std::vector<json> old;
  };
  Sets all_sets(bool create);
  json new_replicaset(const std::vector<json>& old, bool create);
  json create_replicaset(const std::vector<json>& old, int64_t revision);
  void sync();
  void rollout_rolling();
  void rollout_recreate();
  void scale(const json& fresh, const std::vector<json>& old);
  void scale_proportionally(std::vector<json> active);
  bool scale_set(json& rs, int size, const std::string& op);
  bool scale_set_with_event(json& rs, int size);
  bool reconcile_new(const std::vector<json>& all, json& fresh);
  bool reconcile_old(const std::vector<json>& all, std::vector<json> old, const json& fresh);
  int cleanup_unhealthy(std::vector<json>& old, int max_cleanup);
  int scale_down_old(const std::vector<json>& all, std::vector<json>& old);
  bool old_pods_running(const std::vector<json>& old);
  void cleanup(std::vector<json> old);
  bool is_scaling_event();
  void check_paused_conditions();
  void sync_rollout_status(const json& fresh, const std::vector<json>& old);
  void write_deployment();
  void remember(const json& rs);

  Rest& rest_;
  EventRecorder& events_;
  json d_;
  std::vector<json> sets_;  // every set the deployment owns, as last written
};

}  // namespace lpk::kubesim::deploy
