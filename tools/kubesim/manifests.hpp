#pragma once
// Loading manifests: YAML (multi-document) or JSON files turned into JSON objects, with
// YAML scalars typed as Kubernetes' YAML decoder types them.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lpk::kubesim {

/// Every document of every *.yaml, *.yml and *.json file in dir, files in name order,
/// Namespaces first. Throws std::runtime_error naming the file on a parse error.
std::vector<nlohmann::json> load_manifests(const std::filesystem::path& dir);

/// One YAML text (possibly several documents) as JSON documents; empty documents skipped.
std::vector<nlohmann::json> yaml_documents(const std::string& text);

}  // namespace lpk::kubesim
