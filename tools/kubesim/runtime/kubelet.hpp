#pragma once
// The node agent: runs the pods of the store as processes in network namespaces, probes
// readiness, restarts per restartPolicy, reports status, finishes graceful deletions.
// Single-threaded on the io_context; process starts and `ip` calls block it briefly.

#include <sys/types.h>

#include <boost/asio.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tools/kubesim/events.hpp"
#include "tools/kubesim/network.hpp"
#include "tools/kubesim/rest.hpp"
#include "tools/kubesim/runtime/image_store.hpp"
#include "tools/kubesim/runtime/images.hpp"
#include "tools/kubesim/runtime/volumes.hpp"

namespace lpk::kubesim {

struct ContainerSpec;
class ContainerOutput;

/// Where `kubectl logs` reads a container from (Kubelet::log_source), or why it cannot.
struct LogSource {
  std::filesystem::path file;  // the CRI log of the instance
  bool running = false;        // the instance may still write (follow waits for it)
  std::string error;           // the kubelet's 400 message when there is no such log
};

struct KubeletConfig {
  std::filesystem::path state_dir;
  ImageMap images;
  std::string token;
  std::string ca_pem;
  ClusterNetwork network = ClusterNetwork::ipv4();  // pod addresses, the node's, cluster DNS
  /// The image store (--image-store); empty: every image comes from the host-binary map.
  std::filesystem::path image_store;
  std::string zone = "cluster.local";
  std::string node_name = "kubesim-node";
  /// A token of pod's service account bound to pod, for (audience, seconds); the kubelet's
  /// TokenRequest for projected serviceAccountToken sources.
  std::function<std::string(const json& pod, const std::string&, int64_t)> issue_token;
  /// How often the volumes of running pods get the current content of their objects (the
  /// kubelet's --sync-frequency, 1 minute by default there and here).
  std::chrono::milliseconds sync_frequency{60'000};
  /// VolumeContext::token_refresh_after_s (kubesim's --token-refresh-after); 0: the kubelet's rule.
  int64_t token_refresh_after_s = 0;
};

using Clock = std::chrono::steady_clock;

struct ContainerRun {
  std::string name;
  bool init = false;  // an init container (spec.initContainers)
  pid_t pid = -1;
  int restarts = 0;
  int instances = 0;  // starts so far; instance i logs to logs/<name>/<i>.log
  bool ready = false;
  std::string started_at;
  std::optional<int> exit_code;
  std::string finished_at;
  std::string waiting_reason;
  std::string waiting_message;
  Clock::time_point next_start{};
  int backoff_s = 0;
  Clock::time_point next_probe{};
  int probe_failures = 0;
  bool probing = false;
  std::string image_id;    // containerStatuses[].imageID of the running instance
  std::string runtime_id;  // crun's container id; "" for a host program (the fallback)
  std::string container_id;  // containerStatuses[].containerID of the running instance
  std::filesystem::path bundle;
  Clock::time_point pull_retry_at{};  // ImagePullBackOff until then
  int pull_backoff_s = 0;
};

struct PodRun {
  std::string uid, ns, name, netns, link, ip;
  std::filesystem::path dir;
  std::vector<ContainerRun> containers;
  std::vector<ContainerRun> init_containers;  // run in order, each to success, before containers
  bool initialized = true;                    // every init container has succeeded
  std::vector<std::pair<std::string, std::filesystem::path>> volumes;
  std::vector<std::string> created_dirs;
  std::string start_time;
  bool terminating = false;
  Clock::time_point kill_at{};
  Clock::time_point next_volume_sync{};
  /// The pod's network namespace and volumes exist; until then no container starts and the
  /// kubelet tries again at next_sandbox_try, backing off as a kubelet recreating a failed
  /// sandbox does.
  bool sandbox_ready = false;
  Clock::time_point next_sandbox_try{};
  std::chrono::milliseconds sandbox_backoff{0};
};

/// Calls f on every container of run: its init containers, then its containers.
template <class F>
void for_each_container(PodRun& run, F&& f) {
  for (auto& c : run.init_containers) f(c);
  for (auto& c : run.containers) f(c);
}

/// The spec of the container or init container `name` of pod; null when it has none.
const json* container_spec(const json& pod, const std::string& name);

class Kubelet {
 public:
  /// Reports what it does to the pods (Scheduled, Pulled, Created, Started, Killing) through
  /// events, which must outlive it.
  Kubelet(boost::asio::io_context& io, Rest& rest, EventRecorder& events, KubeletConfig cfg);
  ~Kubelet();
  /// Creates the node namespace and starts syncing. Throws when the namespace cannot be made.
  void start();
  /// Kills every container and removes every namespace and directory made. Idempotent.
  void stop();
  /// Fault injection: the next `count` pod sandboxes fail to be made (as when a pod's veth
  /// vanishes), so that tests see the kubelet make them again.
  void fail_next_sandboxes(int count) { failing_sandboxes_ = count; }
  /// The network namespace of a running pod, "" when the pod is not running here.
  std::string netns_of(const std::string& ns, const std::string& name) const;
  /// The log of a container of a pod (its current instance, or the one before with
  /// previous), as the kubelet's validateContainerLogStatus picks it.
  LogSource log_source(const json& pod, const std::string& container, bool previous) const;
  /// Whether instance `file` of a container is still running.
  bool log_running(const json& pod, const std::string& container,
                   const std::filesystem::path& file) const;

 private:
  void schedule();
  // Re-arm themselves after each event, until stop(); each holds only `alive_`.
  void wait_for_sigchld();
  void wait_for_tick();
  void sync();
  void sync_pods();
  void admit(const json& pod);
  void start_container(PodRun& run, ContainerRun& c, const json& pod);
  // The next init container that has not succeeded, or, once all have, the containers that
  // were never started.
  /// The pod's network namespace and veth, created again (fresh names) when a step fails.
  void create_sandbox_network(PodRun& run);
  int failing_sandboxes_ = 0;
  /// The pod's network namespace and volumes; on failure, the pod waits (ContainerCreating,
  /// a FailedCreatePodSandBox event) and the next try is scheduled.
  void prepare_sandbox(PodRun& run, const json& pod);
  void start_pending(PodRun& run, const json& pod);
  bool resolve_program(const Image& image, ContainerSpec& cs, ContainerRun& c);
  // kubelet_images.cpp: the image of a container from the store, else the host-binary map;
  // nullopt (with the container waiting in ErrImagePull or ImagePullBackOff) when neither.
  struct PulledImage {
    std::optional<UnpackedImage> oci;
    Image host;
  };
  std::optional<PulledImage> pull_image(PodRun& run, ContainerRun& c, const json& pod,
                                        const std::string& image);
  void record_pull_failure(PodRun& run, ContainerRun& c, const json& pod,
                           const std::string& image, const std::string& why);
  // Starts c in crun; throws with the reason it could not.
  pid_t start_oci(PodRun& run, ContainerRun& c, const json& pod, const json& spec,
                  const ContainerSpec& cs, const UnpackedImage& image);
  // SIGTERM reaches the container's main process; SIGKILL every process of the container.
  void signal_container(ContainerRun& c, int sig);
  // After the container's process has been reaped: its bundle and runtime state go.
  void release_container(ContainerRun& c);
  void reap(PodRun& run, const json& pod);
  void probe(PodRun& run, ContainerRun& c, const json& pod);
  void terminate(PodRun& run, const json& pod);
  void teardown(PodRun& run);
  void write_status(PodRun& run, const json& pod);
  void sync_volumes(PodRun& run, const json& pod);
  std::string allocate_ip();
  void record_killing(const PodRun& run, const ContainerRun& c);
  std::optional<json> lookup(const std::string& ns, const std::string& plural,
                             const std::string& name) const;
  VolumeContext volume_context(const std::string& ns, const json& pod) const;

  boost::asio::io_context& io_;
  Rest& rest_;
  EventRecorder& events_;
  KubeletConfig cfg_;
  std::optional<ImageStore> store_;
  std::vector<std::weak_ptr<ContainerOutput>> outputs_;
  std::map<std::string, PodRun> pods_;  // by uid
  int next_index_ = 0;
  int last_ip_ = 1;  // host offset of the last address handed out (allocate_ip)
  int listener_ = -1;
  bool scheduled_ = false;
  bool stopped_ = false;
  boost::asio::steady_timer tick_;
  boost::asio::signal_set sigchld_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// logs/<container>/<instance>.log under the pod's directory.
std::filesystem::path container_log_path(const PodRun& run, const std::string& container,
                                         int instance);

/// resolv.conf as the kubelet writes it for dnsPolicy ClusterFirst.
std::string cluster_resolv_conf(const std::string& dns_ip, const std::string& ns,
                                const std::string& zone);

/// Removes what a previous kubesim left behind after a crash: kubesim-* namespaces and
/// the directories it recorded in state_dir/created-dirs.
void cleanup_leftovers(const std::filesystem::path& state_dir);

}  // namespace lpk::kubesim
