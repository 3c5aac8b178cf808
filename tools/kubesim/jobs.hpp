#pragma once
// What the apiserver's Job strategy does to a Job it stores (k/k pkg/registry/batch/job
// strategy.go, pkg/apis/batch/v1 defaults.go, validation.go): the defaults, the generated
// selector and pod labels naming the Job's own uid, and the pod template's restart policy.

#include <nlohmann/json.hpp>
#include <optional>

namespace lpk::kubesim {

using json = nlohmann::json;

/// The Job's uid and name, as the labels the controller's pods carry.
inline constexpr const char* kJobControllerUidLabel = "batch.kubernetes.io/controller-uid";
inline constexpr const char* kJobNameLabel = "batch.kubernetes.io/job-name";

/// Defaults and validates a Job being created (old empty) or updated; on create it picks the
/// Job's uid so that the selector can name it. Throws the apiserver's 422.
void admit_job(json& job, const std::optional<json>& old);

}  // namespace lpk::kubesim
