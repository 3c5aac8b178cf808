// Kubelet: images. A container's image comes from the image store and runs in crun; an image
// the store does not have comes from the host-binary map (a host program, reported as the
// fallback in the pod's status and events); an image in neither is the kubelet's
// ErrImagePull, then ImagePullBackOff until the next attempt.

#include <signal.h>
#include <spdlog/spdlog.h>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/runtime/env.hpp"
#include "tools/kubesim/runtime/kubelet.hpp"
#include "tools/kubesim/runtime/oci_runtime.hpp"
#include "tools/kubesim/runtime/process.hpp"

namespace lpk::kubesim {

namespace {

constexpr const char* kFallbackImageId = "kubesim-host-binary-fallback://";

std::optional<int64_t> id_field(const json& sc, const char* name) {
  if (!sc.is_object() || !sc.contains(name) || !sc[name].is_number_integer()) return std::nullopt;
  return sc[name].get<int64_t>();
}

// The user, groups and root of a container: the image's USER, overridden by the pod's
// securityContext, then by the container's (runAsUser, runAsGroup); fsGroup and
// supplementalGroups as additional groups. Throws EnvError where the kubelet reports
// CreateContainerConfigError.
void apply_security_context(OciContainer& oc, const json& pod, const json& spec,
                            const UnpackedImage& image) {
  json pod_sc = pod["spec"].value("securityContext", json::object());
  json sc = spec.value("securityContext", json::object());
  auto run_as_user = id_field(sc, "runAsUser");
  if (!run_as_user) run_as_user = id_field(pod_sc, "runAsUser");
  auto run_as_group = id_field(sc, "runAsGroup");
  if (!run_as_group) run_as_group = id_field(pod_sc, "runAsGroup");
  std::string user = image.config.user;
  // A runAsUser replaces the image's user, so only its group part still needs the image.
  if (run_as_user)
    user = std::to_string(*run_as_user) + user.substr(std::min(user.find(':'), user.size()));
  std::string error;
  auto ids = resolve_user(user, image.rootfs, error);
  if (!ids) throw EnvError(error);
  oc.uid = ids->uid;
  oc.gid = run_as_group ? gid_t(*run_as_group) : ids->gid;
  bool non_root = sc.value("runAsNonRoot", pod_sc.value("runAsNonRoot", false));
  if (non_root && oc.uid == 0) {
    throw EnvError("container has runAsNonRoot and image will run as root (pod: \"" +
                   pod["metadata"].value("name", "") + "_" +
                   pod["metadata"].value("namespace", "") + "(" + pod["metadata"].value("uid", "") +
                   ")\", container: " + spec.value("name", "") + ")");
  }
  if (auto fs_group = id_field(pod_sc, "fsGroup")) oc.additional_gids.push_back(gid_t(*fs_group));
  for (const auto& g : pod_sc.value("supplementalGroups", json::array())) {
    if (g.is_number_integer()) oc.additional_gids.push_back(g.get<gid_t>());
  }
  oc.read_only_root = sc.value("readOnlyRootFilesystem", false);
}

}  // namespace

std::optional<Kubelet::PulledImage> Kubelet::pull_image(PodRun& run, ContainerRun& c,
                                                        const json& pod, const std::string& image) {
  if (Clock::now() < c.pull_retry_at) {
    if (c.waiting_reason != "ImagePullBackOff") {
      EventSource src{"kubelet", cfg_.node_name};
      std::string part = container_field_path(c.name);
      events_.record(pod, "Normal", "BackOff", "Back-off pulling image \"" + image + "\"", src,
                     part);
      events_.record(pod, "Warning", "Failed", "Error: ImagePullBackOff", src, part);
    }
    c.waiting_reason = "ImagePullBackOff";
    c.waiting_message = "Back-off pulling image \"" + image + "\"";
    c.next_start = c.pull_retry_at;
    return std::nullopt;
  }
  PulledImage out;
  try {
    if (store_) out.oci = store_->pull(image);
  } catch (const std::exception& e) {
    record_pull_failure(run, c, pod, image, e.what());
    return std::nullopt;
  }
  c.pull_backoff_s = 0;
  if (out.oci) {
    c.image_id = out.oci->image_id;
    return out;
  }
  auto host = cfg_.images.find(image);
  if (!host) {
    record_pull_failure(run, c, pod, image,
                        store_ ? "not found in kubesim's image store " + store_->dir().string() +
                                     " nor in its host-binary map"
                               : "not found in kubesim's host-binary map (kubesim was started "
                                 "without --image-store)");
    return std::nullopt;
  }
  out.host = *host;
  c.image_id = kFallbackImageId + image_repository(image);
  return out;
}

void Kubelet::record_pull_failure(PodRun& run, ContainerRun& c, const json& pod,
                                  const std::string& image, const std::string& why) {
  std::string message = "failed to pull image \"" + image + "\": " + why;
  spdlog::info("kubesim: pod {}/{} container {}: {}", run.ns, run.name, c.name, message);
  EventSource src{"kubelet", cfg_.node_name};
  std::string part = container_field_path(c.name);
  events_.record(pod, "Warning", "Failed", "Failed to pull image \"" + image + "\": " + why, src,
                 part);
  events_.record(pod, "Warning", "Failed", "Error: ErrImagePull", src, part);
  c.waiting_reason = "ErrImagePull";
  c.waiting_message = message;
  // The kubelet's image back-off: 10 s doubling to 5 minutes. The next sync, a moment
  // later, shows ImagePullBackOff until then.
  c.pull_backoff_s = std::min(300, std::max(10, c.pull_backoff_s * 2));
  c.pull_retry_at = Clock::now() + std::chrono::seconds(c.pull_backoff_s);
  c.next_start = Clock::now() + std::chrono::seconds(1);
}

pid_t Kubelet::start_oci(PodRun& run, ContainerRun& c, const json& pod, const json& spec,
                         const ContainerSpec& cs, const UnpackedImage& image) {
  OciContainer oc;
  oc.id = run.dir.filename().string() + "_" + c.name + "_" + std::to_string(c.instances);
  oc.bundle = run.dir / "containers" / (c.name + "-" + std::to_string(c.instances));
  oc.image_rootfs = image.rootfs;
  oc.argv = cs.argv;
  oc.env = cs.env;
  oc.cwd = !cs.working_dir.empty()             ? cs.working_dir
           : !image.config.working_dir.empty() ? image.config.working_dir
                                               : "/";
  oc.hostname = cs.hostname;
  oc.netns = cs.netns;
  oc.resolv_conf = cs.resolv_conf;
  oc.hosts = cs.hosts;
  oc.mounts = cs.mounts;
  oc.stdout_fd = cs.stdout_fd;
  oc.stderr_fd = cs.stderr_fd;
  apply_security_context(oc, pod, spec, image);
  c.runtime_id = oc.id;
  c.bundle = oc.bundle;
  return start_oci_container(oc, crun_root(cfg_.state_dir));
}

void Kubelet::signal_container(ContainerRun& c, int sig) {
  if (c.pid <= 0) return;
  if (c.runtime_id.empty()) {
    kill(-c.pid, sig);  // the init of the container's PID namespace and the program
    return;
  }
  // crun forwards what it gets to the container's init, but SIGKILL cannot be forwarded: it
  // goes to the init itself, whose end ends its PID namespace, and crun exits after it.
  pid_t init = sig == SIGKILL ? oci_init_pid(c.bundle) : -1;
  kill(init > 0 ? init : c.pid, sig);
}

void Kubelet::release_container(ContainerRun& c) {
  if (c.runtime_id.empty()) return;
  remove_oci_container(c.runtime_id, c.bundle, crun_root(cfg_.state_dir));
  c.runtime_id.clear();
  c.bundle.clear();
}

}  // namespace lpk::kubesim
