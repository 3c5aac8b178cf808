#pragma once
// The StatefulSet controller's revisions and pod identities, as pure functions over JSON
// (k/k pkg/controller/statefulset/stateful_set_utils.go, pkg/controller/history): a
// ControllerRevision per pod template, stored as the strategic merge patch that puts the
// template back; pods <set>-<ordinal> labelled with the revision they were made from.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/kubesim/controllers/common.hpp"

namespace lpk::kubesim::sts {

using json = nlohmann::json;

inline constexpr const char* kRevisionLabel = "controller-revision-hash";
inline constexpr const char* kHashLabel = "controller.kubernetes.io/hash";
inline constexpr const char* kPodNameLabel = "statefulset.kubernetes.io/pod-name";
inline constexpr const char* kPodIndexLabel = "apps.kubernetes.io/pod-index";

/// getPatch: {"spec":{"template":{...,"$patch":"replace"}}}.
json revision_data(const json& set);
/// newRevision + NewControllerRevision: the ControllerRevision for set's template, named
/// <set>-<hash of the data and collision count>, labelled with the template's labels.
json new_revision(const json& set, int64_t revision, int collision_count);
/// EqualRevision: the same data.
bool equal_revision(const json& a, const json& b);
/// SortControllerRevisions: by revision, then creation, then name.
void sort_revisions(std::vector<json>& revisions);
/// ApplyRevision: set with the template its revision holds.
json apply_revision(const json& set, const json& revision);

/// The ordinal of a pod named <set>-<n>, -1 when it is not one of set's names.
int ordinal_of(const json& set, const json& pod);
int start_ordinal(const json& set);
std::string pod_revision(const json& pod);
/// The pod has been created (its phase is set).
bool created(const json& pod);
/// newStatefulSetPod: from the template, named <set>-<ordinal>, with its identity.
json new_pod(const json& set, int ordinal);
/// newVersionedStatefulSetPod: ordinals below the partition (and, with no rollingUpdate,
/// below status.currentReplicas) come from the current revision, the rest from the update.
json new_versioned_pod(const json& current_set, const json& update_set,
                       const std::string& current_revision, const std::string& update_revision,
                       int ordinal);
/// !(running, ready, not terminating, available for minReadySeconds).
bool unavailable(const json& pod, int min_ready, SysTime now);

/// replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas of status
/// counted over pods (computeReplicaStatus).
void count_replicas(json& status, const std::vector<json>& pods, int min_ready,
                    const std::string& current_revision, const std::string& update_revision,
                    SysTime now);
/// completeRollingUpdate: a RollingUpdate whose pods are all updated and ready makes the
/// update revision current.
void complete_rolling_update(const json& set, json& status);
/// The status with the JSON omissions of StatefulSetStatus.
json status_json(const json& status);

}  // namespace lpk::kubesim::sts
