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
  /// Projected service-account tokens are replaced once this old even when the kubelet's own
  /// rule (80% of expirationSeconds, or 24 hours) would keep them longer; 0: that rule only.
  /// kubesim's --token-refresh-after, so that tests can see a rotation in seconds.
  int64_t token_refresh_after_s = 0;
  std::function<std::optional<json>(const std::string&, const std::string&)> lookup;
  /// A token of the pod's service account, bound to the pod, for (audience, seconds); an
  /// empty audience means the API's own.
  std::function<std::string(const std::string&, int64_t)> token;
  /// The pod's securityContext.fsGroup: volumes are made group-owned by it as the kubelet's
  /// SetVolumeOwnership does (group read for the read-only kinds, read-write for emptyDir,
  /// setgid directories).
  std::optional<unsigned> fs_group;
};

/// Writes every volume of pod under dir/<volume name> (hostPath volumes are not written).
/// Only what the pod declares: the service-account volume comes from admission.
/// Returns the source directory per volume name. Throws std::runtime_error naming a
/// missing non-optional configMap or secret.
std::vector<std::pair<std::string, std::filesystem::path>> materialize_volumes(
    const json& pod, const std::filesystem::path& dir, const VolumeContext& ctx);

/// The kubelet's periodic volume sync (--sync-frequency): configMap, secret, downwardAPI and
/// projected volumes of `pod` (as materialize_volumes wrote them into `volumes`) get the
/// current content of their objects. A volume whose content changed is published as the
/// atomic writer does: a new `..<timestamp>` directory, `..data` swapped to it by one rename,
/// top-level links added or removed, the old directory deleted. Projected tokens are kept
/// until due (see VolumeContext). A source that cannot be read now (a deleted configMap) leaves
/// the volume as it was, as the kubelet does. subPath mounts see none of it: they were bound
/// to the file of their start. Returns the names of the volumes rewritten.
std::vector<std::string> refresh_volumes(
    const json& pod, const std::vector<std::pair<std::string, std::filesystem::path>>& volumes,
    const VolumeContext& ctx);

/// One bind mount for a container: source path (file or dir) onto target, read-only or not.
struct Mount {
  std::filesystem::path source;
  std::string target;
  bool read_only;
};

std::vector<Mount> container_mounts(
    const json& container, const std::vector<std::pair<std::string, std::filesystem::path>>& vols);

}  // namespace lpk::kubesim
