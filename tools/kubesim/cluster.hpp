#pragma once
// One kubesim: the store, the API behind HTTPS, the controllers, and (when enabled) the
// pod runtime, all on one io_context. main.cpp only parses flags and runs this.

#include <boost/asio.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "tools/kubesim/irsa.hpp"
#include "tools/kubesim/network.hpp"

namespace lpk::kubesim {

struct ClusterOptions {
  std::filesystem::path state_dir;  // PKI, kubeconfig, runtime state
  std::filesystem::path manifests;  // applied at start when not empty
  uint16_t port = 0;                // 0 picks a free port
  bool runtime = true;              // run pods as processes in network namespaces
  std::filesystem::path images;     // image -> command map (runtime): the host-binary fallback
  std::filesystem::path image_store;  // OCI archives and layouts run with crun (runtime)
  std::chrono::milliseconds bookmark_interval{std::chrono::seconds(60)};
  size_t watch_history = 20000;
  IrsaOptions irsa;  // the IRSA-style hook (--aws-default-region, --sts-regional-endpoint)
  // The kubelet's volume sync period (KubeletConfig::sync_frequency).
  std::chrono::milliseconds sync_frequency{std::chrono::seconds(60)};
  // Projected tokens replaced once this old (0: the kubelet's own rule only).
  std::chrono::milliseconds token_refresh_after{0};
  // The family of pod and service addresses (--ip-family): one, as a single-stack cluster.
  IpFamily ip_family = IpFamily::ipv4;
};

class Cluster {
 public:
  Cluster(boost::asio::io_context& io, ClusterOptions opts);
  ~Cluster();
  /// Generates the PKI, writes the kubeconfig, seeds the default objects, starts serving.
  void start();
  /// Stops serving and tears down every pod, namespace and mount. Idempotent.
  void stop();
  std::filesystem::path kubeconfig() const;
  uint16_t port() const;
  /// HTTPS connections being served now.
  size_t connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// `lpk-kubesim down`: asks the kubesim serving state_dir to stop (SIGTERM, waits for it),
/// then removes whatever a crashed one left (namespaces, directories). Returns a message
/// for the user; throws std::runtime_error when the cleanup needs root it does not have.
std::string shut_down(const std::filesystem::path& state_dir);

}  // namespace lpk::kubesim
