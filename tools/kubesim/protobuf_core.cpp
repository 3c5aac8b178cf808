// meta/v1 and core/v1 types as protobuf_schemas.hpp describes them.
#include "tools/kubesim/protobuf_schemas.hpp"

namespace lpk::kubesim::pb {

namespace {

using T = Type;

// meta/v1 ObjectMeta: creationTimestamp 8 is written (zero) by every Go client.
constexpr Field kObjectMetaFields[] = {
    {1, "name", T::kString},       {2, "generateName", T::kString},
    {3, "namespace", T::kString},  {8, "creationTimestamp", T::kTime},
    {11, "labels", T::kStringMap}, {12, "annotations", T::kStringMap},
};

constexpr Field kRequirementFields[] = {
    {1, "key", T::kString, nullptr, true},
    {2, "operator", T::kString, nullptr, true},
    {3, "values", T::kStrings},
};
constexpr Schema kRequirement = schema_of(kRequirementFields);

constexpr Field kLabelSelectorFields[] = {
    {1, "matchLabels", T::kStringMap},
    {2, "matchExpressions", T::kObjects, &kRequirement},
};

constexpr Field kEnvVarFields[] = {
    {1, "name", T::kString, nullptr, true},
    {2, "value", T::kString},
};
constexpr Schema kEnvVar = schema_of(kEnvVarFields);

constexpr Field kContainerPortFields[] = {
    {1, "name", T::kString},
    {2, "hostPort", T::kInt},
    {3, "containerPort", T::kInt, nullptr, true},
    {4, "protocol", T::kString},
    {5, "hostIP", T::kString},
};
constexpr Schema kContainerPort = schema_of(kContainerPortFields);

constexpr Field kContainerFields[] = {
    {1, "name", T::kString, nullptr, true},
    {2, "image", T::kString},
    {3, "command", T::kStrings},
    {4, "args", T::kStrings},
    {5, "workingDir", T::kString},
    {6, "ports", T::kObjects, &kContainerPort},
    {7, "env", T::kObjects, &kEnvVar},
    {8, "resources", T::kObject, &kEmpty},
    {13, "terminationMessagePath", T::kString},
    {14, "imagePullPolicy", T::kString},
    {20, "terminationMessagePolicy", T::kString},
};
constexpr Schema kContainer = schema_of(kContainerFields);

constexpr Field kPodSpecFields[] = {
    {2, "containers", T::kObjects, &kContainer, true},
    {3, "restartPolicy", T::kString},
    {4, "terminationGracePeriodSeconds", T::kInt, nullptr, true},
    {6, "dnsPolicy", T::kString},
    {8, "serviceAccountName", T::kString},
};
constexpr Schema kPodSpec = schema_of(kPodSpecFields);

constexpr Field kPodTemplateSpecFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "spec", T::kObject, &kPodSpec},
};

constexpr Field kConfigMapFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "data", T::kStringMap},
    {3, "binaryData", T::kBytesMap},
    {4, "immutable", T::kBool, nullptr, true},
};

constexpr Field kSecretFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "data", T::kBytesMap},
    {3, "type", T::kString},
    {4, "stringData", T::kStringMap},
    {5, "immutable", T::kBool, nullptr, true},
};

constexpr Field kNamespaceSpecFields[] = {{1, "finalizers", T::kStrings}};
constexpr Schema kNamespaceSpec = schema_of(kNamespaceSpecFields);
constexpr Field kNamespaceStatusFields[] = {{1, "phase", T::kString}};
constexpr Schema kNamespaceStatus = schema_of(kNamespaceStatusFields);
constexpr Field kNamespaceFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "spec", T::kObject, &kNamespaceSpec},
    {3, "status", T::kObject, &kNamespaceStatus},
};

constexpr Field kServicePortFields[] = {
    {1, "name", T::kString},
    {2, "protocol", T::kString},
    {3, "port", T::kInt, nullptr, true},
    {4, "targetPort", T::kIntOrString},
    {5, "nodePort", T::kInt},
    {6, "appProtocol", T::kString, nullptr, true},
};
constexpr Schema kServicePort = schema_of(kServicePortFields);

constexpr Field kServiceSpecFields[] = {
    {1, "ports", T::kObjects, &kServicePort},
    {2, "selector", T::kStringMap},
    {3, "clusterIP", T::kString},
    {4, "type", T::kString},
    {5, "externalIPs", T::kStrings},
    {7, "sessionAffinity", T::kString},
    {8, "loadBalancerIP", T::kString},
    {9, "loadBalancerSourceRanges", T::kStrings},
    {10, "externalName", T::kString},
    {11, "externalTrafficPolicy", T::kString},
    {12, "healthCheckNodePort", T::kInt},
    {13, "publishNotReadyAddresses", T::kBool},
    {18, "clusterIPs", T::kStrings},
};
constexpr Schema kServiceSpec = schema_of(kServiceSpecFields);
// ServiceStatus{loadBalancer 1}: a LoadBalancerStatus, empty on create.
constexpr Field kServiceStatusFields[] = {{1, "loadBalancer", T::kObject, &kEmpty}};
constexpr Schema kServiceStatus = schema_of(kServiceStatusFields);

constexpr Field kServiceFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {2, "spec", T::kObject, &kServiceSpec},
    {3, "status", T::kObject, &kServiceStatus},
};

constexpr Field kServiceAccountFields[] = {
    {1, "metadata", T::kObject, &kObjectMeta},
    {4, "automountServiceAccountToken", T::kBool, nullptr, true},
};

}  // namespace

const Schema kObjectMeta = schema_of(kObjectMetaFields);
const Schema kLabelSelector = schema_of(kLabelSelectorFields);
const Schema kPodTemplateSpec = schema_of(kPodTemplateSpecFields);
const Schema kConfigMap = schema_of(kConfigMapFields);
const Schema kSecret = schema_of(kSecretFields);
const Schema kNamespace = schema_of(kNamespaceFields);
const Schema kService = schema_of(kServiceFields);
const Schema kServiceAccount = schema_of(kServiceAccountFields);

}  // namespace lpk::kubesim::pb
