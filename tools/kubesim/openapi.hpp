#pragma once
// A minimal OpenAPI v3 description: one document per group-version whose PATCH operations
// carry x-kubernetes-group-version-kind and the fieldValidation query parameter. That is
// what kubectl reads to decide that the server validates fields itself (so it sends
// fieldValidation=Strict instead of downloading schemas). No type schemas are served, so
// kubectl computes apply patches from its built-in types, as it does for old servers.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace lpk::kubesim {

/// The document for /openapi/v3 or /openapi/v3/<api/v1|apis/G/V>, nullopt otherwise.
std::optional<nlohmann::json> openapi_document(const std::string& path);

}  // namespace lpk::kubesim
