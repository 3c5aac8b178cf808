#pragma once
// Containers from OCI images, run with crun. Each container gets a bundle directory of its
// own under the pod's: config.json (the OCI runtime spec written here), an overlay root
// (the shared, unpacked image below, the bundle's `upper/` above, so that a container's
// writes stay its own and the image is never changed), and the pid file crun writes.
// `crun run` stays in the foreground as kubesim's child, as a containerd shim would: its
// exit is the container's, with the container's exit code, and it forwards SIGTERM to the
// container's init. The overlay is mounted in a mount namespace private to that child, so it
// ends with the container and nothing is mounted in kubesim's namespace.

#include <sys/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tools/kubesim/runtime/volumes.hpp"

namespace lpk::kubesim {

struct OciContainer {
  std::string id;  // crun's container id, unique in the kubesim
  std::filesystem::path bundle;
  std::filesystem::path image_rootfs;  // the unpacked image, never written to
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;  // fsGroup, supplementalGroups
  std::string cwd = "/";
  std::string hostname;
  std::string netns;  // name under /run/netns
  bool read_only_root = false;
  std::string resolv_conf;  // host file bind-mounted on /etc/resolv.conf
  std::string hosts;        // host file bind-mounted on /etc/hosts
  std::vector<Mount> mounts;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

/// The OCI runtime spec (config.json) for c: the container's own pid, ipc, uts and mount
/// namespaces, the pod's network namespace, containerd's default capabilities (effective
/// only for uid 0), the volumes bind-mounted. Pure.
nlohmann::json oci_config(const OciContainer& c);

/// Where crun keeps the state of a kubesim's containers: state_dir/crun.
std::filesystem::path crun_root(const std::filesystem::path& state_dir);

/// Writes the bundle and starts `crun run` for it; returns the pid of that crun (the leader
/// of a new process group, killed with kubesim by PR_SET_PDEATHSIG). Throws
/// std::runtime_error when the child cannot get as far as running crun.
pid_t start_oci_container(const OciContainer& c, const std::filesystem::path& crun_root);

/// The container's init process as kubesim sees it, from crun's pid file; -1 before crun has
/// written it. SIGKILL to it ends every process of the container (its PID namespace).
pid_t oci_init_pid(const std::filesystem::path& bundle);

/// Removes the bundle and any state crun left for id (crun removes its own on a normal exit).
void remove_oci_container(const std::string& id, const std::filesystem::path& bundle,
                          const std::filesystem::path& crun_root);

}  // namespace lpk::kubesim
