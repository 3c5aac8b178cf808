#pragma once
// Request bodies in the apiserver's protobuf encoding (application/vnd.kubernetes.protobuf),
// which kubectl's typed clients send: the magic "k8s\0", then a runtime.Unknown whose raw
// bytes are the object (k8s.io/apimachinery pkg/runtime/serializer/protobuf/protobuf.go).
// Decoded: the kinds kubesim answers without storing (the reviews kubectl auth creates and
// TokenRequest), and the kinds of `kubectl create`: ConfigMap, Secret, Namespace, Service,
// ServiceAccount, Deployment, Job, Role, RoleBinding, ClusterRole, ClusterRoleBinding
// (protobuf_schemas.hpp; strictly: a field the decoder does not know that holds a non-zero value
// leaves the body undecoded), into the JSON kubectl would have sent. Pure: bytes in, JSON out.

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

namespace lpk::kubesim {

inline constexpr std::string_view kProtobufContentType = "application/vnd.kubernetes.protobuf";

/// The object as JSON, or nullopt when body is not a well-formed protobuf object of a kind
/// decoded here.
std::optional<nlohmann::json> decode_protobuf_body(std::string_view body);

}  // namespace lpk::kubesim
