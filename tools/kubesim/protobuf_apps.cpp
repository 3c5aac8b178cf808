// apps/v1 Deployment and batch/v1 Job as protobuf_schemas.hpp describes them.
#include "tools/kubesim/protobuf_schemas.hpp"

namespace lpk::kubesim::pb {

namespace {

using T = Type;

// DeploymentStrategy{type 1, rollingUpdate 2}: kubectl leaves it empty.
constexpr Field kStrategyFields[] = {{1, "type", T::kString}};
constexpr Schema kStrategy = schema_of(kStrategyFields);

// The pointer fields (replicas, revisionHistoryLimit, progressDeadlineSeconds) are sent only
// when set, and then written even as 0.
constexpr Field kDeploymentSpecFields[] = {
    {1, "replicas", T::kInt, nullptr, true},
    {2, "selector", T::kObject, &kLabelSelector},
    {3, "template", T::kObject, &kPodTemplateSpec},
    {4, "strategy", T::kObject, &kStrategy},
    {5, "minReadySeconds", T::kInt},
    {6, "revisionHistoryLimit", T::kInt, nullptr, true},
    {7, "paused", T::kBool},
    {9, "progressDeadlineSeconds", T::kInt, nullptr, true},
};
constexpr Schema kDeploymentSpec = schema_of(kDeploymentSpecFields);

constexpr Field kDeploymentFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "spec", T::kObject, &kDeploymentSpec},
    {3, "status", T::kObject, &kEmpty},
};

constexpr Field kJobSpecFields[] = {
    {1, "parallelism", T::kInt, nullptr, true},
    {2, "completions", T::kInt, nullptr, true},
    {3, "activeDeadlineSeconds", T::kInt, nullptr, true},
    {6, "template", T::kObject, &kPodTemplateSpec},
    {7, "backoffLimit", T::kInt, nullptr, true},
    {8, "ttlSecondsAfterFinished", T::kInt, nullptr, true},
    {9, "completionMode", T::kString, nullptr, true},
    {10, "suspend", T::kBool, nullptr, true},
};
constexpr Schema kJobSpec = schema_of(kJobSpecFields);

constexpr Field kJobFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "spec", T::kObject, &kJobSpec},
    {3, "status", T::kObject, &kEmpty},
};

}  // namespace

const Schema kDeployment = schema_of(kDeploymentFields);
const Schema kJob = schema_of(kJobFields);

}  // namespace lpk::kubesim::pb
