#pragma once
// Server-side printing: the meta.k8s.io/v1 Table that kubectl asks for with
// "Accept: application/json;as=Table;v=v1;g=meta.k8s.io" and prints as is.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/kubesim/resources.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

/// include_object: "Metadata" (default), "Object" or "None", as in ?includeObject=.
json make_table(const ResourceType& type, const std::vector<json>& objects,
                const std::string& resource_version, const std::string& include_object,
                bool with_columns = true);

/// "5s", "3m", "2h", "4d": the age kubectl prints for a creationTimestamp.
std::string human_age(const std::string& rfc3339);

}  // namespace lpk::kubesim
