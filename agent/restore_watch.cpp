#include "agent/restore_watch.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "kube/config.hpp"
#include "proxy/takeover/restore_watch.hpp"
#include "proxy/tunnel/duration.hpp"
#include "proxy/tunnel/flags.hpp"

namespace lpk::agent {

namespace {

constexpr const char* kUsage =
    "usage: lpk-agent restore-watch --workload KIND/NAME --session ID\n"
    "                               [--orphan-timeout DURATION] [--namespace NS]\n"
    "Restores KIND/NAME (Deployment, StatefulSet, ReplicaSet or Pod) as `lpk-proxy restore`\n"
    "does once lpk session ID's heartbeat Lease is older than the orphan timeout (default\n"
    "10m), then deletes the session's objects and this restorer. Uses the pod's service account.";

std::atomic<bool> g_stop{false};

void note_stop(int) { g_stop = true; }

struct Parsed {
  proxy::RestoreWatchOptions watch;
  std::string ns;
};

proxy::WorkloadRef parse_workload(const std::string& value) {
  auto slash = value.find('/');
  auto kind = kube::workload_kind(value.substr(0, slash));
  if (slash == std::string::npos || !kind || slash + 1 == value.size()) {
    throw std::invalid_argument("--workload wants KIND/NAME such as Deployment/api, got '" +
                                value + "'");
  }
  return {*kind, "", value.substr(slash + 1)};
}

Parsed parse(std::span<const std::string> args) {
  Parsed p;
  auto handle = [&](const std::string& flag, const std::string& value) {
    if (flag == "-h" || flag == "--help") {
      std::printf("%s\n", kUsage);
      std::exit(0);
    }
    if (flag == "--workload") {
      p.watch.workload = parse_workload(value);
    } else if (flag == "--session") {
      p.watch.session_id = value;
    } else if (flag == "--namespace") {
      p.ns = value;
    } else if (flag == "--orphan-timeout") {
      auto d = tunnel::parse_duration(value);
      if (!d || *d < std::chrono::seconds(1)) {
        throw std::invalid_argument("--orphan-timeout wants a duration of 1s or more, like 10m");
      }
      p.watch.orphan_timeout = std::chrono::duration_cast<std::chrono::seconds>(*d);
    } else {
      throw std::invalid_argument("unknown flag " + flag);
    }
  };
  tunnel::for_each_flag(args, handle, nullptr, {"-h", "--help"});
  if (p.watch.workload.name.empty() || p.watch.session_id.empty()) {
    throw std::invalid_argument("--workload KIND/NAME and --session ID are required");
  }
  return p;
}

}  // namespace

int run_restore_watch(std::span<const std::string> args) {
  Parsed parsed;
  try {
    parsed = parse(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-agent: restore-watch: %s (see lpk-agent restore-watch --help)\n",
                 e.what());
    return 2;
  }
  std::signal(SIGTERM, note_stop);
  std::signal(SIGINT, note_stop);
  try {
    auto config = kube::in_cluster_config();
    if (!config) {
      throw std::runtime_error("not in a pod: KUBERNETES_SERVICE_HOST/PORT or the service "
                               "account token is missing; restore-watch runs as lpk's restorer Job");
    }
    parsed.watch.workload.ns = parsed.ns.empty() ? config->namespace_ : parsed.ns;
    kube::Client client(*config);
    // A poll every few seconds: a call stuck on a connection that died silently is abandoned
    // and the next poll makes a new one.
    client.set_call_timeout(std::chrono::seconds(30));
    auto progress = proxy::console::Progress::for_stdout();
    auto end = proxy::watch_and_restore(client, progress, parsed.watch, g_stop);
    progress.step(end == proxy::RestoreWatchEnd::restored   ? "restored; restorer removed"
                  : end == proxy::RestoreWatchEnd::not_ours ? "nothing to restore; restorer removed"
                                                            : "stopped");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-agent: restore-watch: %s\n", e.what());
    return 1;
  }
}

}  // namespace lpk::agent
