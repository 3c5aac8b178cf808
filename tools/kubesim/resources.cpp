#include "tools/kubesim/resources.hpp"

#include <stdexcept>

namespace lpk::kubesim {

const std::vector<ResourceType>& resource_types() {
  static const std::vector<ResourceType> kTypes = {
      {"namespaces", "namespace", "Namespace", "", "v1", false, {"ns"}, true, true},
      {"pods", "pod", "Pod", "", "v1", true, {"po"}, true, false},
      {"services", "service", "Service", "", "v1", true, {"svc"}, true, true},
      {"endpoints", "endpoints", "Endpoints", "", "v1", true, {"ep"}, false, false},
      {"configmaps", "configmap", "ConfigMap", "", "v1", true, {"cm"}, false, false},
      {"secrets", "secret", "Secret", "", "v1", true, {}, false, false},
      {"deployments", "deployment", "Deployment", "apps", "v1", true, {"deploy"}, true, false},
      {"replicasets", "replicaset", "ReplicaSet", "apps", "v1", true, {"rs"}, true, false},
      {"statefulsets", "statefulset", "StatefulSet", "apps", "v1", true, {"sts"}, true, false},
      {"controllerrevisions", "controllerrevision", "ControllerRevision", "apps", "v1", true, {},
       false, false},
      {"events", "event", "Event", "", "v1", true, {"ev"}, false, false},
      {"endpointslices",
       "endpointslice",
       "EndpointSlice",
       "discovery.k8s.io",
       "v1",
       true,
       {},
       false,
       false},
      {"jobs", "job", "Job", "batch", "v1", true, {}, true, false},
      // A plain stored object: leader election and lpk's session heartbeat renew its spec.
      {"leases", "lease", "Lease", "coordination.k8s.io", "v1", true, {}},
      {"serviceaccounts", "serviceaccount", "ServiceAccount", "", "v1", true, {"sa"}},
      {"roles", "role", "Role", "rbac.authorization.k8s.io", "v1", true, {}},
      {"rolebindings", "rolebinding", "RoleBinding", "rbac.authorization.k8s.io", "v1", true, {}},
      {"clusterroles", "clusterrole", "ClusterRole", "rbac.authorization.k8s.io", "v1", false, {}},
      {"clusterrolebindings",
       "clusterrolebinding",
       "ClusterRoleBinding",
       "rbac.authorization.k8s.io",
       "v1",
       false,
       {}},
      {"selfsubjectaccessreviews",
       "selfsubjectaccessreview",
       "SelfSubjectAccessReview",
       "authorization.k8s.io",
       "v1",
       false,
       {},
       false,
       false,
       {"create"}},
      {"selfsubjectrulesreviews",
       "selfsubjectrulesreview",
       "SelfSubjectRulesReview",
       "authorization.k8s.io",
       "v1",
       false,
       {},
       false,
       false,
       {"create"}},
  };
  return kTypes;
}

const ResourceType* find_resource(const std::string& group, const std::string& version,
                                  const std::string& plural) {
  for (const auto& t : resource_types()) {
    if (t.group == group && t.version == version && t.plural == plural) return &t;
  }
  return nullptr;
}

const ResourceType& resource_by_plural(const std::string& plural) {
  for (const auto& t : resource_types()) {
    if (t.plural == plural) return t;
  }
  throw std::logic_error("unknown resource " + plural);
}

}  // namespace lpk::kubesim
