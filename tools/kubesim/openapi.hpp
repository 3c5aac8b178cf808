#pragma once
// The OpenAPI v3 documents: /openapi/v3 lists one document per group-version, whose
// operations carry x-kubernetes-group-version-kind and the fieldValidation query parameter
// (kubectl then lets the server validate fields), and whose components hold the schemas of
// the kinds kubesim serves (openapi_types.cpp), which `kubectl explain` walks. The PATCH
// operations declare no request body types, so kubectl computes client-side apply patches
// from its built-in types, which agree with these schemas' patch strategies.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace lpk::kubesim {

/// Every component schema, by its full name (io.k8s.api.apps.v1.Deployment...).
const nlohmann::json& openapi_schemas();

/// The document for /openapi/v3 or /openapi/v3/<api/v1|apis/G/V>, nullopt otherwise.
std::optional<nlohmann::json> openapi_document(const std::string& path);

}  // namespace lpk::kubesim
