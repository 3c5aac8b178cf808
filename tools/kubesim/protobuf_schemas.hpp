#pragma once
// The Go types kubesim decodes from protobuf request bodies, as tables of their fields (field
// numbers from k8s.io/api {core,apps,batch,rbac}/v1 and k8s.io/apimachinery meta/v1
// generated.proto). Each lists the fields `kubectl create KIND` sends with any of its flags;
// anything else must arrive as its zero value (protobuf_wire.hpp).

#include "tools/kubesim/protobuf_wire.hpp"

namespace lpk::kubesim::pb {

// meta/v1 (protobuf_core.cpp)
extern const Schema kObjectMeta, kLabelSelector;
// core/v1 (protobuf_core.cpp)
extern const Schema kPodTemplateSpec, kConfigMap, kSecret, kNamespace, kService, kServiceAccount;
// apps/v1, batch/v1 (protobuf_apps.cpp)
extern const Schema kDeployment, kJob;
// rbac.authorization.k8s.io/v1 (protobuf_rbac.cpp)
extern const Schema kRole, kRoleBinding, kClusterRole, kClusterRoleBinding;

}  // namespace lpk::kubesim::pb
