#pragma once
// An IRSA-style mutating hook, as amazon-eks-pod-identity-webhook (pkg/handler/handler.go)
// mutates a Pod at creation when its ServiceAccount carries eks.amazonaws.com/role-arn:
// every container (and init container) without AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE
// and without a mount at the token directory gets the environment (AWS_STS_REGIONAL_ENDPOINTS
// and AWS_DEFAULT_REGION / AWS_REGION when configured, then AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE) and a read-only mount of the projected "aws-iam-token" volume
// (a service-account token for audience sts.amazonaws.com, 86400 s), which is put first in
// the pod's volumes. The account may override the audience (eks.amazonaws.com/audience), ask
// for regional STS (eks.amazonaws.com/sts-regional-endpoints: "true") and the token's life
// (eks.amazonaws.com/token-expiration). The pod may name containers to leave alone
// (eks.amazonaws.com/skip-containers: "a,b").

#include <nlohmann/json.hpp>
#include <string>

namespace lpk::kubesim {

using json = nlohmann::json;

struct IrsaOptions {
  std::string region;          // --aws-default-region; empty: no region variables
  bool regional_sts = false;   // --sts-regional-endpoint
  std::string audience = "sts.amazonaws.com";
  int64_t expiration = 86400;  // seconds
  std::string mount_path = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
};

/// Mutates pod (being created) for its service account sa; does nothing without a role.
void admit_irsa(json& pod, const json& sa, const IrsaOptions& opts);

}  // namespace lpk::kubesim
