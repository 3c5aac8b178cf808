#pragma once
// Server-side apply (PATCH with application/apply-patch+yaml), as pure functions: the field
// sets each manager owns (metadata.managedFields, FieldsV1), the merge of an applied
// configuration into the live object, conflicts with other managers, --force-conflicts.
//
// Simplified against structured-merge-diff: ownership is the set of leaf paths a manager's
// configuration sets; lists merge by the one key merge_key_for() names (containers by name,
// container ports by containerPort alone, not containerPort+protocol) and every other list
// (finalizers, args, set-lists) is atomic, owned whole. Writes through the API that are not
// applies (POST, PUT, other PATCHes) record an Update manager; kubesim's own controllers and
// kubelet record none (the apiserver would name kube-controller-manager and the kubelet).

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace lpk::kubesim {

using json = nlohmann::json;

/// A field path in FieldsV1 elements: "f:spec", "k:{\"name\":\"app\"}", and "." for a list
/// item itself.
using FieldPath = std::vector<std::string>;
using FieldSet = std::set<FieldPath>;

/// The paths an object sets, without the fields the apiserver leaves out of ownership
/// (apiVersion, kind, status, metadata name/namespace/uid/resourceVersion/...).
FieldSet fields_of(const json& obj);

/// FieldsV1 ({"f:spec":{"f:replicas":{}}}) to and from a set.
json fields_v1(const FieldSet& set);
FieldSet parse_fields_v1(const json& v1);

/// ".spec.template.spec.containers[name=\"app\"].image", as conflicts name paths.
std::string path_string(const FieldPath& p);

struct ApplyRequest {
  std::string manager;      // ?fieldManager=, required
  bool force = false;       // ?force=true
  std::string api_version;  // of the type, for the managedFields entry
};

/// Applies `config` (the decoded configuration) to `live` (null when the object does not
/// exist yet) and returns the object to write, managedFields updated. Throws ApiError 409
/// reason Conflict, worded as the apiserver words it, when the configuration changes a field
/// another manager owns and !force.
json server_side_apply(const json& live, const json& config, const ApplyRequest& req);

/// Records a write that is not an apply as fieldmanager does: the fields whose values it
/// set or changed (all of them for a create: old is null) belong to `manager` with operation
/// Update and leave every other manager; fields it removed leave every manager.
json record_update(const json& old, json next, const std::string& manager,
                   const std::string& api_version);

}  // namespace lpk::kubesim
