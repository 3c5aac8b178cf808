#pragma once
// The three PATCH semantics of the Kubernetes API, as pure functions on JSON documents.

#include <nlohmann/json.hpp>
#include <string>

namespace lpk::kubesim {

using json = nlohmann::json;

/// RFC 7386 JSON merge patch: objects merge, null deletes, lists are replaced whole.
json apply_merge_patch(const json& target, const json& patch);

/// RFC 6902 JSON patch. Throws std::invalid_argument with the reason when an operation fails.
json apply_json_patch(const json& target, const json& ops);

/// Strategic merge patch for built-in kinds: lists whose Go field carries
/// patchStrategy=merge (containers, env, volumes, volumeMounts, ports, ...) merge by their
/// merge key; other lists are replaced. Honours the directives kubectl sends: $patch
/// (replace, delete, merge), $setElementOrder/<field>, $deleteFromPrimitiveList/<field>,
/// $retainKeys. Throws std::invalid_argument on a malformed directive.
json apply_strategic_merge_patch(const json& target, const json& patch);

/// The merge key of a list field, or "" when the list is replaced whole. The first element
/// of the list decides between keys that share a field name (container vs service ports).
std::string merge_key_for(const std::string& field, const json& sample);

}  // namespace lpk::kubesim
