#pragma once
// Pod volumes as the kubelet materialises them: configMap, secret, downwardAPI, projected
// (with a service-account token), emptyDir, hostPath. Files are written under a per-pod
// directory; the container process bind-mounts them at their mountPaths.

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace lpk::kubesim {

using json = nlohmann::json;

struct VolumeContext {
  std::function<std::optional<json>(const std::string&, const std::string&)> lookup;
  std::string token;   // service-account token (kubesim's bearer token)
  std::string ca_pem;  // kube-root-ca.crt
};

/// Writes every volume of pod under dir/<volume name> (hostPath volumes are not written).
/// Returns the source directory per volume name. Throws std::runtime_error naming a
/// missing non-optional configMap or secret.
std::vector<std::pair<std::string, std::filesystem::path>> materialize_volumes(
    const json& pod, const std::filesystem::path& dir, const VolumeContext& ctx);

/// One bind mount for a container: source path (file or dir) onto target, read-only or not.
struct Mount {
  std::filesystem::path source;
  std::string target;
  bool read_only;
};

std::vector<Mount> container_mounts(
    const json& container, const std::vector<std::pair<std::string, std::filesystem::path>>& vols);

}  // namespace lpk::kubesim
