#include "tools/kubesim/runtime/kubelet.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <fstream>
#include <set>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/runtime/container_logs.hpp"
#include "tools/kubesim/runtime/env.hpp"
#include "tools/kubesim/runtime/netns.hpp"
#include "tools/kubesim/runtime/oci_runtime.hpp"
#include "tools/kubesim/runtime/process.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

namespace fs = std::filesystem;

std::string cluster_resolv_conf(const std::string& dns_ip, const std::string& ns,
                                const std::string& zone) {
  return "search " + ns + ".svc." + zone + " svc." + zone + " " + zone + "\nnameserver " + dns_ip +
         "\noptions ndots:5\n";
}

void cleanup_leftovers(const fs::path& state_dir) {
  for (const auto& n : list_kubesim_netns()) {
    kill_processes_in(n);
    delete_netns(n);
  }
  std::ifstream f(state_dir / "created-dirs");
  std::vector<std::string> dirs;
  for (std::string line; std::getline(f, line);) dirs.push_back(line);
  // Deepest first; only what is still empty goes (rmdir), so nothing of the user's is lost.
  std::sort(dirs.rbegin(), dirs.rend());
  for (const auto& d : dirs) {
    std::error_code ec;
    if (fs::is_regular_file(d, ec) && fs::file_size(d, ec) == 0)
      fs::remove(d, ec);
    else if (fs::is_directory(d, ec) && fs::is_empty(d, ec))
      fs::remove(d, ec);
  }
  std::error_code ec;
  fs::remove(state_dir / "created-dirs", ec);
  fs::remove_all(state_dir / "pods", ec);
  // The containers' processes went with their namespaces above; crun's records of them go too.
  fs::remove_all(crun_root(state_dir), ec);
}

Kubelet::Kubelet(boost::asio::io_context& io, Rest& rest, EventRecorder& events, KubeletConfig cfg)
    : io_(io),
      rest_(rest),
      events_(events),
      cfg_(std::move(cfg)),
      tick_(io),
      sigchld_(io, SIGCHLD) {}

Kubelet::~Kubelet() { stop(); }

void Kubelet::start() {
  cleanup_leftovers(cfg_.state_dir);
  if (!cfg_.image_store.empty()) store_.emplace(cfg_.image_store, cfg_.state_dir / "images");
  create_node_netns(cfg_.network);
  listener_ = rest_.store().add_listener([this](const WatchEvent& ev) {
    if (ev.resource == "pods") schedule();
  });
  wait_for_sigchld();
  wait_for_tick();
  schedule();
}

void Kubelet::wait_for_sigchld() {
  sigchld_.async_wait([this, alive = alive_](boost::system::error_code ec, int) {
    if (ec || !*alive) return;
    schedule();
    wait_for_sigchld();
  });
}

void Kubelet::wait_for_tick() {
  tick_.expires_after(std::chrono::milliseconds(500));
  tick_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive) return;
    sync();
    wait_for_tick();
  });
}

void Kubelet::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  if (listener_ >= 0) rest_.store().remove_listener(listener_);
  tick_.cancel();
  boost::system::error_code ec;
  sigchld_.cancel(ec);
  for (auto& [uid, run] : pods_) teardown(run);
  pods_.clear();
  for (auto& w : outputs_) {
    if (auto o = w.lock()) o->close();
  }
  outputs_.clear();
  delete_netns(node_netns());
  cleanup_leftovers(cfg_.state_dir);
}

std::string Kubelet::netns_of(const std::string& ns, const std::string& name) const {
  for (const auto& [uid, run] : pods_) {
    if (run.ns == ns && run.name == name && !run.terminating) return run.netns;
  }
  return "";
}

void Kubelet::schedule() {
  if (scheduled_ || stopped_) return;
  scheduled_ = true;
  boost::asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    scheduled_ = false;
    sync();
  });
}

std::optional<json> Kubelet::lookup(const std::string& ns, const std::string& plural,
                                    const std::string& name) const {
  auto obj = rest_.store().get(plural, ns, name);
  if (!obj && plural == "configmaps" && name == "kube-root-ca.crt") {
    return json{{"data", {{"ca.crt", cfg_.ca_pem}}}};
  }
  return obj;
}

// As the host-local IPAM plugin of real clusters does: the next free address after the last
// one handed out, not the lowest free one. An address freed a moment ago stays in the node's
// neighbour cache (and in clients' connection tables) with the old pod's MAC for several
// seconds; handing it straight to a new pod sends that pod's first connections into the void.
std::string Kubelet::allocate_ip() {
  std::set<std::string> used;
  for (const auto& [uid, run] : pods_) used.insert(run.ip);
  const uint32_t hosts = cfg_.network.pod_hosts();
  for (uint32_t step = 1; step <= hosts; ++step) {
    uint32_t i = (uint32_t(last_ip_) - 1 + step) % hosts + 1;
    auto ip = cfg_.network.pod_ip(i);
    if (i == 1 || !ip || used.count(*ip)) continue;  // 1: the node
    last_ip_ = int(i);
    return *ip;
  }
  throw std::runtime_error("the pod range of node " + cfg_.node_name + " is full");
}

// A failed write (a 409 when a client changed the pod at the same moment, say) is retried
// by the next pass; it must not end kubesim.
void Kubelet::sync() {
  if (stopped_) return;
  try {
    sync_pods();
  } catch (const std::exception& e) {
    spdlog::warn("kubesim: kubelet pass: {}", e.what());
  }
}

void Kubelet::sync_pods() {
  std::set<std::string> seen;
  for (auto pod : rest_.store().list("pods")) {
    std::string uid = pod["metadata"]["uid"];
    seen.insert(uid);
    auto it = pods_.find(uid);
    if (it == pods_.end()) {
      if (terminating(pod)) {
        rest_.store().remove("pods", pod["metadata"]["namespace"], pod["metadata"]["name"]);
        continue;
      }
      std::string node = pod["spec"].value("nodeName", "");
      if (!node.empty() && node != cfg_.node_name) continue;
      admit(pod);
      continue;
    }
    PodRun& run = it->second;
    if (terminating(pod) && !run.terminating) terminate(run, pod);
    reap(run, pod);
    if (run.terminating) {
      bool all_down = true;
      for_each_container(run, [&](ContainerRun& c) { all_down = all_down && c.pid < 0; });
      if (!all_down && Clock::now() >= run.kill_at) {
        for_each_container(run, [&](ContainerRun& c) {
          if (c.pid > 0) signal_container(c, SIGKILL);
        });
      }
      if (all_down) {
        teardown(run);
        rest_.store().remove("pods", run.ns, run.name);
        pods_.erase(it);
      }
      continue;
    }
    for (auto& c : run.init_containers) {
      if (c.pid < 0 && c.next_start != Clock::time_point{} && Clock::now() >= c.next_start) {
        start_container(run, c, pod);
      }
    }
    start_pending(run, pod);
    for (auto& c : run.containers) {
      if (run.initialized && c.pid < 0 && c.next_start != Clock::time_point{} &&
          Clock::now() >= c.next_start) {
        start_container(run, c, pod);
      }
      probe(run, c, pod);
    }
    sync_volumes(run, pod);
    write_status(run, pod);
  }
  for (auto it = pods_.begin(); it != pods_.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    // Deleted at once (no grace period): the kubelet still stops the containers.
    for_each_container(it->second, [&](const ContainerRun& c) {
      if (c.pid > 0 && !it->second.terminating) record_killing(it->second, c);
    });
    teardown(it->second);
    it = pods_.erase(it);
  }
}

}  // namespace lpk::kubesim
