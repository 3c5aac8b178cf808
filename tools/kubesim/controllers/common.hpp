#pragma once
// Helpers the controllers share: ownership, readiness, template hashing.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/kubesim/rest.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

/// An ownerReference with controller=true pointing at owner.
json controller_ref(const json& owner);
bool owned_by(const json& obj, const std::string& uid);
/// Objects of a type in ns that owner controls.
std::vector<json> owned(Rest& rest, const std::string& plural, const json& owner);
bool pod_ready(const json& pod);
bool terminating(const json& obj);
/// The pod-template-hash of a template: FNV-32a of its JSON, written in the
/// consonant-and-digit alphabet Kubernetes uses for generated names.
std::string template_hash(const json& pod_template);
std::string safe_encode(const std::string& s);
/// A pod built from a template for owner, named name.
json pod_from_template(const json& owner, const json& tmpl, const std::string& name,
                       const std::string& ns);
/// Resolves an int-or-percent (maxSurge "25%") against total; round_up for surge.
int int_or_percent(const json& v, int total, bool round_up);

}  // namespace lpk::kubesim
