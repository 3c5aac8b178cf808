// Kubelet: which log file `kubectl logs` reads, as validateContainerLogStatus
// (k/k pkg/kubelet/kubelet_pods.go) picks the container instance from the container's state.

#include "tools/kubesim/runtime/kubelet.hpp"

namespace lpk::kubesim {

namespace fs = std::filesystem;

fs::path container_log_path(const PodRun& run, const std::string& container, int instance) {
  return run.dir / "logs" / container / (std::to_string(instance) + ".log");
}

namespace {

const ContainerRun* find_container(const PodRun& run, const std::string& name) {
  for (const auto& c : run.containers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace

LogSource Kubelet::log_source(const json& pod, const std::string& container, bool previous) const {
  std::string pod_name = pod["metadata"].value("name", "");
  auto quoted = [](const std::string& s) { return "\"" + s + "\""; };
  auto it = pods_.find(pod["metadata"].value("uid", ""));
  const ContainerRun* c = it == pods_.end() ? nullptr : find_container(it->second, container);
  if (!c) {
    return {{}, false,
            "container " + quoted(container) + " in pod " + quoted(pod_name) + " is not available"};
  }
  bool running = c->pid > 0;
  bool restarting = !running && c->next_start != Clock::time_point{};
  // The instance lastState.terminated names: the one before a running (or finished) one, or
  // the one that just ended when the container waits to start again.
  int last_terminated = running || !restarting ? c->instances - 2 : c->instances - 1;
  if (previous) {
    if (last_terminated < 0) {
      return {{}, false,
              "previous terminated container " + quoted(container) + " in pod " +
                  quoted(pod_name) + " not found"};
    }
    return {container_log_path(it->second, container, last_terminated), false, ""};
  }
  if (c->instances == 0) {
    std::string reason = c->waiting_reason.empty() ? "ContainerCreating" : c->waiting_reason;
    if (reason == "ErrImagePull") reason = "image can't be pulled";
    if (reason == "ImagePullBackOff") reason = "trying and failing to pull image";
    return {{}, false,
            "container " + quoted(container) + " in pod " + quoted(pod_name) +
                " is waiting to start: " + reason};
  }
  return {container_log_path(it->second, container, c->instances - 1), running, ""};
}

bool Kubelet::log_running(const json& pod, const std::string& container,
                          const fs::path& file) const {
  auto it = pods_.find(pod["metadata"].value("uid", ""));
  if (it == pods_.end()) return false;
  const ContainerRun* c = find_container(it->second, container);
  return c && c->pid > 0 && container_log_path(it->second, container, c->instances - 1) == file;
}

}  // namespace lpk::kubesim
