#pragma once
// The Deployment controller's arithmetic, as pure functions over JSON objects, after k/k
// pkg/controller/deployment/util/deployment_util.go and progress.go: revisions and the
// annotations copied to ReplicaSets, surge and unavailability fenceposts, proportional
// scaling, status and its Available/Progressing conditions, the progress deadline.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/kubesim/controllers/common.hpp"

namespace lpk::kubesim::deploy {

using json = nlohmann::json;

inline constexpr const char* kRevision = "deployment.kubernetes.io/revision";
inline constexpr const char* kRevisionHistory = "deployment.kubernetes.io/revision-history";
inline constexpr const char* kDesiredReplicas = "deployment.kubernetes.io/desired-replicas";
inline constexpr const char* kMaxReplicas = "deployment.kubernetes.io/max-replicas";
inline constexpr const char* kHashLabel = "pod-template-hash";
inline constexpr size_t kMaxRevHistoryChars = 2000;

/// The annotations a Deployment never copies to its ReplicaSets (annotationsToSkip).
bool skip_copy_annotation(const std::string& key);
/// SetNewReplicaSetAnnotations: copies the Deployment's annotations (but the skipped ones),
/// raises the revision to new_revision (keeping the old one in revision-history), and for
/// a set about to be created (!exists) adds desired-/max-replicas. True when rs changed.
bool set_new_rs_annotations(const json& d, json& rs, int64_t new_revision, bool exists);
bool set_replicas_annotations(json& rs, int desired, int max);
bool replicas_annotations_need_update(const json& rs, int desired, int max);

int64_t revision_of(const json& obj);
int64_t max_revision(const std::vector<json>& sets);

bool is_rolling_update(const json& d);
bool has_progress_deadline(const json& d);
/// ResolveFenceposts: {surge, unavailable}; both 0 resolves unavailable to 1.
std::pair<int, int> resolve_fenceposts(const json& d);
int max_surge(const json& d);        // 0 unless RollingUpdate
int max_unavailable(const json& d);  // 0 unless RollingUpdate, at most spec.replicas

/// The template a ReplicaSet runs, compared to the Deployment's ignoring pod-template-hash.
bool equal_ignore_hash(const json& template1, const json& template2);
/// ReplicaSetsByCreationTimestamp (then name).
void sort_by_creation(std::vector<json>& sets);
/// FindNewReplicaSet: index of the oldest set whose template is the Deployment's, or -1.
int find_new_replicaset(const json& d, std::vector<json>& sets);
/// FindActiveOrLatest over new (may be null) and old: the one active set, the newest when
/// none is active, null (empty json) when several are.
json find_active_or_latest(const json& new_rs, std::vector<json> old);
bool is_saturated(const json& d, const json& rs);
/// NewRSNewReplicas: what the new set may grow to now.
int new_rs_new_replicas(const json& d, const std::vector<json>& all, const json& new_rs);
/// GetProportion for one set when `to_add` replicas are spread and `added` already were.
int get_proportion(const json& rs, const json& d, int to_add, int added);

json new_condition(const std::string& type, const std::string& status, const std::string& reason,
                   const std::string& message, const std::string& now);
const json* get_condition(const json& status, const std::string& type);
const json* get_condition(json&& status, const std::string& type) = delete;  // would dangle
/// obj's status, or an empty object (a reference that outlives the call, unlike value()).
const json& status_of(const json& obj);
/// SetDeploymentCondition: no change when status and reason are the same; the transition
/// time is kept when only the reason changes.
void set_condition(json& status, json condition);
void remove_condition(json& status, const std::string& type);

/// calculateStatus: counts from the sets (new may be null), the Available condition.
json calculate_status(const std::vector<json>& all, const json& new_rs, const json& d,
                      const std::string& now);
bool deployment_complete(const json& d, const json& status);
bool deployment_progressing(const json& d, const json& status);
bool deployment_timed_out(const json& d, const json& status, SysTime now);
/// syncRolloutStatus's conditions: complete, progressing, or timed out (the last one with
/// reason ProgressDeadlineExceeded); ReplicaFailure promoted from the sets.
json rollout_status(const std::vector<json>& all, const json& new_rs, const json& d,
                    SysTime now);

}  // namespace lpk::kubesim::deploy
