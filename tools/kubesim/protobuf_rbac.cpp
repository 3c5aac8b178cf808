// rbac.authorization.k8s.io/v1 types as protobuf_schemas.hpp describes them.
#include "tools/kubesim/protobuf_schemas.hpp"

namespace lpk::kubesim::pb {

namespace {

using T = Type;

// verbs and rules have no omitempty: Go writes null for none.
constexpr Field kPolicyRuleFields[] = {
    {1, "verbs", T::kStrings, nullptr, true},
    {2, "apiGroups", T::kStrings},
    {3, "resources", T::kStrings},
    {4, "resourceNames", T::kStrings},
    {5, "nonResourceURLs", T::kStrings},
};
constexpr Schema kPolicyRule = schema_of(kPolicyRuleFields);

constexpr Field kAggregationRuleFields[] = {
    {1, "clusterRoleSelectors", T::kObjects, &kLabelSelector},
};
constexpr Schema kAggregationRule = schema_of(kAggregationRuleFields);

constexpr Field kSubjectFields[] = {
    {1, "kind", T::kString, nullptr, true},
    {2, "apiGroup", T::kString},
    {3, "name", T::kString, nullptr, true},
    {4, "namespace", T::kString},
};
constexpr Schema kSubject = schema_of(kSubjectFields);

constexpr Field kRoleRefFields[] = {
    {1, "apiGroup", T::kString, nullptr, true},
    {2, "kind", T::kString, nullptr, true},
    {3, "name", T::kString, nullptr, true},
};
constexpr Schema kRoleRef = schema_of(kRoleRefFields);

constexpr Field kRoleFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "rules", T::kObjects, &kPolicyRule, true},
};

constexpr Field kClusterRoleFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "rules", T::kObjects, &kPolicyRule, true},
    {3, "aggregationRule", T::kObject, &kAggregationRule},
};

// RoleBinding and ClusterRoleBinding.
constexpr Field kBindingFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "subjects", T::kObjects, &kSubject},
    {3, "roleRef", T::kObject, &kRoleRef},
};

}  // namespace

const Schema kRole = schema_of(kRoleFields);
const Schema kRoleBinding = schema_of(kBindingFields);
const Schema kClusterRole = schema_of(kClusterRoleFields);
const Schema kClusterRoleBinding = schema_of(kBindingFields);

}  // namespace lpk::kubesim::pb
