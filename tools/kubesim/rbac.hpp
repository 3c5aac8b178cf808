#pragma once
// Authorization as the apiserver does it with --authorization-mode=RBAC: request attributes
// (k8s.io/apiserver pkg/endpoints/request/requestinfo.go), the system:masters group allowed
// everything, then Roles and ClusterRoles reached through RoleBindings and
// ClusterRoleBindings (k/k plugin/pkg/auth/authorizer/rbac/rbac.go), with the Forbidden
// message of k8s.io/apiserver pkg/endpoints/handlers/responsewriters/errors.go. Pure on the store.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/kubesim/status.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

struct AuthzAttributes {
  std::string user;
  std::vector<std::string> groups;
  std::string verb;
  bool resource_request = true;
  std::string group, resource, subresource, ns, name;  // resource requests
  std::string path;                                      // non-resource requests
};

struct AuthzDecision {
  bool allowed = false;
  std::string reason;
};

/// The attributes of an HTTP request: method, path and query as received.
AuthzAttributes request_attributes(const std::string& method, const std::string& path,
                                   const std::map<std::string, std::string>& query,
                                   const std::string& user, const std::vector<std::string>& groups);

AuthzDecision authorize(const Store& store, const AuthzAttributes& a);

/// `User "u" cannot list resource "pods" in API group "" in the namespace "ns"`.
std::string forbidden_message(const AuthzAttributes& a);
/// The 403 the apiserver answers a denied request with.
ApiError forbidden_error(const AuthzAttributes& a);

/// The status of a SelfSubjectRulesReview: every rule that applies to the user in ns.
json rules_review_status(const Store& store, const std::string& user,
                         const std::vector<std::string>& groups, const std::string& ns);

/// The ClusterRoles and ClusterRoleBindings of the apiserver's bootstrap policy that kubesim
/// needs (cluster-admin, admin, edit, view, system:discovery, system:basic-user,
/// system:public-info-viewer), as JSON objects to create.
std::vector<json> bootstrap_policy();

}  // namespace lpk::kubesim
