#pragma once
// Pod volumes as the kubelet materialises them: configMap, secret, downwardAPI, projected
// (with service-account tokens), emptyDir, hostPath. Files are written under a per-pod
// directory; the container process bind-mounts them at their mountPaths. configMap, secret,
// downwardAPI and projected volumes use the kubelet's atomic-writer layout
// (pkg/volume/util/atomic_writer.go): the files in `..<timestamp>/`, a `..data` symlink to
// it, and one visible symlink per top-level name (`token -> ..data/token`).

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
  /// A token of the pod's service account, bound to the pod, for (audience, seconds); an
  /// empty audience means the API's own.
  std::function<std::string(const std::string&, int64_t)> token;
};

/// Writes every volume of pod under dir/<volume name> (hostPath volumes are not written).
/// Only what the pod declares: the service-account volume comes from admission.
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
