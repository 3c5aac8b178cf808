#pragma once
// Discovery documents: /version, /api, /apis, /apis/<group>, and per group-version
// APIResourceLists, built from the resource table.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace lpk::kubesim {

using json = nlohmann::json;

/// The discovery document served at path, or nullopt when path is not a discovery path.
std::optional<json> discovery_document(const std::string& path, const std::string& server_addr);

}  // namespace lpk::kubesim
