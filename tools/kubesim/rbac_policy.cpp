// The part of the apiserver's bootstrap RBAC policy (k/k plugin/pkg/auth/authorizer/rbac/
// bootstrappolicy/policy.go) that kubesim's resources need. admin, edit and view are
// aggregated roles there; here they hold the aggregated rules for kubesim's resources.

#include "tools/kubesim/rbac.hpp"

namespace lpk::kubesim {

namespace {

const json kRead = {"get", "list", "watch"};
const json kWrite = {"create", "delete", "deletecollection", "patch", "update"};

json rule(json verbs, json groups, json resources) {
  return {{"verbs", std::move(verbs)}, {"apiGroups", std::move(groups)},
          {"resources", std::move(resources)}};
}

json cluster_role(const std::string& name, json rules) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "ClusterRole"},
          {"metadata",
           {{"name", name},
            {"labels", {{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
            {"annotations", {{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}}},
          {"rules", std::move(rules)}};
}

json binding(const std::string& name, json subjects) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "ClusterRoleBinding"},
          {"metadata",
           {{"name", name},
            {"labels", {{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
            {"annotations", {{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}}},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", name}}},
          {"subjects", std::move(subjects)}};
}

json group(const std::string& name) {
  return {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", name}};
}

json view_rules() {
  return {rule(kRead, {""},
               {"configmaps", "endpoints", "persistentvolumeclaims", "pods", "pods/log",
                "pods/status", "replicationcontrollers", "serviceaccounts", "services",
                "services/status", "events", "namespaces", "namespaces/status"}),
          rule(kRead, {"apps"},
               {"deployments", "deployments/scale", "deployments/status", "replicasets",
                "replicasets/scale", "replicasets/status", "statefulsets", "statefulsets/scale",
                "statefulsets/status"}),
          rule(kRead, {"batch"}, {"jobs", "jobs/status"}),
          rule(kRead, {"discovery.k8s.io"}, {"endpointslices"})};
}

json edit_rules() {
  json all = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
  json rules = view_rules();
  rules.push_back(rule(all, {""},
                       {"configmaps", "endpoints", "persistentvolumeclaims", "pods", "secrets",
                        "serviceaccounts", "services"}));
  rules.push_back(rule({"create", "get"}, {""}, {"pods/portforward", "pods/exec", "pods/attach"}));
  rules.push_back(rule({"create"}, {""}, {"serviceaccounts/token"}));
  rules.push_back(rule(all, {"apps"},
                       {"deployments", "deployments/scale", "replicasets", "replicasets/scale",
                        "statefulsets", "statefulsets/scale"}));
  rules.push_back(rule(all, {"batch"}, {"jobs"}));
  rules.push_back(rule(all, {"discovery.k8s.io"}, {"endpointslices"}));
  return rules;
}

}  // namespace

std::vector<json> bootstrap_policy() {
  json admin_rules = edit_rules();
  admin_rules.push_back(rule(
      {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
      {"rbac.authorization.k8s.io"}, {"rolebindings", "roles"}));
  admin_rules.push_back(rule({"create"}, {"authorization.k8s.io"}, {"localsubjectaccessreviews"}));
  json discovery_urls = {"/api",     "/api/*",      "/apis",  "/apis/*",   "/healthz",
                         "/livez",   "/openapi",    "/openapi/*", "/readyz", "/version",
                         "/version/"};
  return {
      cluster_role("cluster-admin",
                   {rule({"*"}, {"*"}, {"*"}), {{"verbs", {"*"}}, {"nonResourceURLs", {"*"}}}}),
      cluster_role("admin", admin_rules),
      cluster_role("edit", edit_rules()),
      cluster_role("view", view_rules()),
      cluster_role("system:discovery",
                   {{{"verbs", {"get"}}, {"nonResourceURLs", discovery_urls}}}),
      cluster_role("system:basic-user",
                   {rule({"create"}, {"authorization.k8s.io"},
                         {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}),
                    rule({"create"}, {"authentication.k8s.io"}, {"selfsubjectreviews"})}),
      cluster_role("system:public-info-viewer",
                   {{{"verbs", {"get"}},
                     {"nonResourceURLs",
                      {"/healthz", "/livez", "/readyz", "/version", "/version/"}}}}),
      binding("cluster-admin", {group("system:masters")}),
      binding("system:discovery", {group("system:authenticated")}),
      binding("system:basic-user", {group("system:authenticated")}),
      binding("system:public-info-viewer",
              {group("system:authenticated"), group("system:unauthenticated")}),
  };
}

}  // namespace lpk::kubesim
