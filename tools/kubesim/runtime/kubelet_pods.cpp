// Kubelet: one pod's life — admission onto the node, container starts and restarts,
// graceful termination, teardown, and the status a kubelet reports.

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <fstream>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/runtime/container_logs.hpp"
#include "tools/kubesim/runtime/env.hpp"
#include "tools/kubesim/runtime/kubelet.hpp"
#include "tools/kubesim/runtime/netns.hpp"
#include "tools/kubesim/runtime/process.hpp"

namespace lpk::kubesim {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> strings(const json& list) {
  std::vector<std::string> out;
  if (list.is_array()) {
    for (const auto& s : list) out.push_back(s.is_string() ? s.get<std::string>() : s.dump());
  }
  return out;
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::trunc);
  f << s;
}

}  // namespace

const json* container_spec(const json& pod, const std::string& name) {
  const auto& spec = pod["spec"];
  for (const char* list : {"containers", "initContainers"}) {
    // By reference into pod: the pointer returned must outlive this loop.
    auto it = spec.find(list);
    if (it == spec.end() || !it->is_array()) continue;
    for (const auto& cs : *it) {
      if (cs.value("name", "") == name) return &cs;
    }
  }
  return nullptr;
}

VolumeContext Kubelet::volume_context(const std::string& ns, const json& pod) const {
  VolumeContext vctx;
  vctx.lookup = [this, ns](const std::string& p, const std::string& n) { return lookup(ns, p, n); };
  if (cfg_.issue_token) {
    vctx.token = [this, pod](const std::string& aud, int64_t secs) {
      return cfg_.issue_token(pod, aud, secs);
    };
  }
  vctx.token_refresh_after_s = cfg_.token_refresh_after_s;
  json sc = pod["spec"].value("securityContext", json::object());
  if (sc.is_object() && sc["fsGroup"].is_number_integer()) {
    vctx.fs_group = sc["fsGroup"].get<unsigned>();
  }
  return vctx;
}

void Kubelet::sync_volumes(PodRun& run, const json& pod) {
  if (run.volumes.empty() || Clock::now() < run.next_volume_sync) return;
  run.next_volume_sync = Clock::now() + cfg_.sync_frequency;
  try {
    for (const auto& name : refresh_volumes(pod, run.volumes, volume_context(run.ns, pod))) {
      spdlog::info("kubesim: pod {}/{}: volume {} updated", run.ns, run.name, name);
    }
  } catch (const std::exception& e) {
    spdlog::warn("kubesim: pod {}/{}: volume sync: {}", run.ns, run.name, e.what());
  }
}

void Kubelet::admit(const json& pod_in) {
  json pod = pod_in;
  const auto& t = resource_by_plural("pods");
  bool bound = !pod["spec"].value("nodeName", "").empty();
  pod["spec"]["nodeName"] = cfg_.node_name;
  pod["metadata"].erase("resourceVersion");
  pod = rest_.update_object(t, pod);
  if (!bound) {
    events_.record(pod, "Normal", "Scheduled",
                   "Successfully assigned " + pod["metadata"].value("namespace", "") + "/" +
                       pod["metadata"].value("name", "") + " to " + cfg_.node_name,
                   {"default-scheduler", ""});
  }
  PodRun run;
  run.uid = pod["metadata"]["uid"];
  run.ns = pod["metadata"]["namespace"];
  run.name = pod["metadata"]["name"];
  run.ip = allocate_ip();
  run.dir = cfg_.state_dir / "pods" / (run.ns + "_" + run.name + "_" + run.uid.substr(0, 8));
  run.start_time = now_rfc3339();
  fs::create_directories(run.dir);
  for (const auto& c : pod["spec"]["containers"]) {
    ContainerRun container;
    container.name = c["name"];
    run.containers.push_back(std::move(container));
  }
  for (const auto& c : pod["spec"].value("initContainers", json::array())) {
    ContainerRun container;
    container.name = c["name"];
    container.init = true;
    run.init_containers.push_back(std::move(container));
  }
  run.initialized = run.init_containers.empty();
  std::string hostname = pod["spec"].value("hostname", run.name);
  std::string fqdn;
  if (pod["spec"].contains("subdomain")) {
    fqdn = hostname + "." + pod["spec"]["subdomain"].get<std::string>() + "." + run.ns + ".svc." +
           cfg_.zone;
  }
  write_text(run.dir / "resolv.conf",
             cluster_resolv_conf(cfg_.network.dns_ip(), run.ns, cfg_.zone));
  write_text(run.dir / "hosts",
             "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\t"
             "localhost ip6-localhost ip6-loopback\n" +
                 run.ip + "\t" + (fqdn.empty() ? "" : fqdn + "\t") + hostname + "\n");
  prepare_sandbox(run, pod);
  auto [it, ok] = pods_.emplace(run.uid, std::move(run));
  PodRun& r = it->second;
  start_pending(r, pod);
  write_status(r, pod);
}

void Kubelet::create_sandbox_network(PodRun& run) {
  // Fresh names each time: what a failed try left is deleted, never reused.
  int index = next_index_++;
  run.netns = pod_netns(index);
  run.link = "ksv" + std::to_string(index);
  try {
    create_pod_netns(run.netns, run.link, run.ip, cfg_.network);
    if (failing_sandboxes_ > 0) {
      --failing_sandboxes_;
      throw std::runtime_error("`ip -n " + node_netns() + " link set " + run.link + " master " +
                               kBridge + " up` failed: Cannot find device \"" + run.link +
                               "\" (injected: kubelet/sandbox-failures)");
    }
  } catch (const std::exception& e) {
    auto left = describe_netns_mount(run.netns);
    delete_netns(run.netns);  // takes the veth pair with it, if one was made
    run.netns.clear();
    throw std::runtime_error(std::string(e.what()) + " (" + left + ")");
  }
}

void Kubelet::prepare_sandbox(PodRun& run, const json& pod) {
  // Under load the pod's veth was seen to vanish between `link add` and `link set` (a few pods
  // in a thousand), several times within a fraction of a second. A kubelet whose sandbox
  // failed reports FailedCreatePodSandBox and creates a new one on a later sync, backing off;
  // no container starts before it has its network.
  run.next_sandbox_try = {};
  try {
    create_sandbox_network(run);
    VolumeContext vctx = volume_context(run.ns, pod);
    json with_ip = pod;
    with_ip["status"]["podIP"] = run.ip;
    with_ip["status"]["podIPs"] = {{{"ip", run.ip}}};
    with_ip["status"]["hostIP"] = cfg_.network.node_ip();
    run.volumes = materialize_volumes(with_ip, run.dir / "volumes", vctx);
    run.sandbox_ready = true;
    for_each_container(run, [](ContainerRun& c) {
      if (c.waiting_reason != "ContainerCreating") return;
      c.waiting_reason.clear();
      c.waiting_message.clear();
    });
  } catch (const std::exception& e) {
    bool network = !run.netns.empty();  // the network was made: the volumes failed
    if (network) {
      // The volumes failed (a missing configMap): the network stays, the volumes are tried
      // again when a container starts, as before.
      run.sandbox_ready = true;
    } else {
      run.sandbox_backoff = std::min<std::chrono::milliseconds>(
          std::max<std::chrono::milliseconds>(run.sandbox_backoff * 2, std::chrono::milliseconds(500)),
          std::chrono::seconds(10));
      run.next_sandbox_try = Clock::now() + run.sandbox_backoff;
      events_.record(pod, "Warning", "FailedCreatePodSandBox",
                     std::string("Failed to create pod sandbox: ") + e.what(),
                     {"kubelet", cfg_.node_name});
    }
    spdlog::warn("kubesim: pod {}/{}: {}", run.ns, run.name, e.what());
    for_each_container(run, [&](ContainerRun& c) {
      c.waiting_reason = "ContainerCreating";
      c.waiting_message = e.what();
      c.next_start = network ? Clock::now() + std::chrono::seconds(2) : Clock::time_point{};
    });
  }
}

void Kubelet::start_pending(PodRun& run, const json& pod) {
  if (!run.sandbox_ready) {
    if (Clock::now() >= run.next_sandbox_try) prepare_sandbox(run, pod);
    if (!run.sandbox_ready) return;
  }
  auto never_started = [](const ContainerRun& c) {
    return c.pid < 0 && c.instances == 0 && c.waiting_reason.empty() &&
           c.next_start == Clock::time_point{};
  };
  if (!run.initialized) {
    for (auto& c : run.init_containers) {
      if (c.pid < 0 && c.exit_code == 0) continue;  // succeeded
      if (never_started(c)) start_container(run, c, pod);
      return;  // the containers wait for this one
    }
    run.initialized = true;
  }
  for (auto& c : run.containers) {
    if (never_started(c)) start_container(run, c, pod);
  }
}

void Kubelet::start_container(PodRun& run, ContainerRun& c, const json& pod) {
  c.next_start = {};
  const json* spec = container_spec(pod, c.name);
  if (!spec) return;
  if (run.volumes.empty()) {
    // Volumes failed at admission (a missing configMap, say): try again now.
    try {
      VolumeContext vctx = volume_context(run.ns, pod);
      run.volumes = materialize_volumes(pod, run.dir / "volumes", vctx);
    } catch (const std::exception& e) {
      c.waiting_reason = "ContainerCreating";
      c.waiting_message = e.what();
      c.next_start = Clock::now() + std::chrono::seconds(2);
      return;
    }
  }
  std::string image_name = spec->value("image", "");
  auto image = pull_image(run, c, pod, image_name);
  if (!image) return;
  // An image from the store runs with its own config; a host program with the map's.
  Image program = image->oci ? Image{image->oci->config.entrypoint, image->oci->config.cmd, {}}
                             : image->host;
  ContainerSpec cs;
  cs.argv = container_argv(program, strings(spec->value("command", json::array())),
                           strings(spec->value("args", json::array())));
  if (cs.argv.empty()) {
    c.waiting_reason = "CreateContainerError";
    c.waiting_message = "failed to generate container spec: no command specified";
    c.next_start = Clock::now() + std::chrono::seconds(10);
    return;
  }
  EnvInputs in;
  in.lookup = [this, ns = run.ns](const std::string& p, const std::string& n) {
    return lookup(ns, p, n);
  };
  if (pod["spec"].value("enableServiceLinks", true))
    in.services = rest_.store().list("services", run.ns);
  if (run.ns != "default") {
    if (auto k = rest_.store().get("services", "default", "kubernetes")) in.services.push_back(*k);
  }
  json live = pod;
  live["status"]["podIP"] = run.ip;
  live["status"]["podIPs"] = {{{"ip", run.ip}}};
  live["status"]["hostIP"] = cfg_.network.node_ip();
  live["status"]["hostIPs"] = {{{"ip", cfg_.network.node_ip()}}};
  try {
    cs.env = container_env(live, *spec, in);
  } catch (const EnvError& e) {
    c.waiting_reason = "CreateContainerConfigError";
    c.waiting_message = e.what();
    c.next_start = Clock::now() + std::chrono::seconds(2);
    return;
  }
  // The kubelet expands $(VAR) in command and args with the container's environment.
  for (auto& a : cs.argv) {
    a = expand_vars(a, [&](const std::string& k) -> std::optional<std::string> {
      for (const auto& [n, v] : cs.env) {
        if (n == k) return v;
      }
      return std::nullopt;
    });
  }
  if (image->oci) cs.env = with_image_env(image->oci->config.env, std::move(cs.env));
  bool has_path =
      std::any_of(cs.env.begin(), cs.env.end(), [](auto& p) { return p.first == "PATH"; });
  if (!has_path)
    cs.env.insert(cs.env.begin(),
                  {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
  cs.env.insert(cs.env.begin(), {"HOSTNAME", pod["spec"].value("hostname", run.name)});
  if (!image->oci && !resolve_program(image->host, cs, c)) return;
  cs.netns = run.netns;
  cs.hostname = pod["spec"].value("hostname", run.name);
  cs.working_dir = spec->value("workingDir", "");
  cs.resolv_conf = (run.dir / "resolv.conf").string();
  cs.hosts = (run.dir / "hosts").string();
  cs.mounts = container_mounts(*spec, run.volumes);
  cs.log_file = (run.dir / (c.name + ".log")).string();
  try {
    auto output = std::make_shared<ContainerOutput>(io_, cs.log_file,
                                                    container_log_path(run, c.name, c.instances));
    cs.stdout_fd = output->stdout_fd();
    cs.stderr_fd = output->stderr_fd();
    size_t before = run.created_dirs.size();
    c.pid = image->oci ? start_oci(run, c, pod, *spec, cs, *image->oci)
                       : lpk::kubesim::start_container(cs, run.created_dirs);
    // A host program's id is its own pid (not its init's): what /proc shows of the container.
    c.container_id = image->oci ? "crun://" + c.runtime_id
                                : "kubesim://" + std::to_string(container_program(c.pid));
    ContainerOutput::start(output);
    std::erase_if(outputs_, [](const auto& w) { return w.expired(); });
    outputs_.push_back(output);
    ++c.instances;
    std::ofstream rec(cfg_.state_dir / "created-dirs", std::ios::app);
    for (size_t i = before; i < run.created_dirs.size(); ++i) rec << run.created_dirs[i] << "\n";
    c.started_at = now_rfc3339();
    c.waiting_reason.clear();
    c.waiting_message.clear();
    c.ready = false;
    c.probe_failures = 0;
    c.next_probe = Clock::now() + std::chrono::seconds(spec->contains("readinessProbe")
                                                           ? (*spec)["readinessProbe"].value(
                                                                 "initialDelaySeconds", 0)
                                                           : 0);
    spdlog::info("kubesim: pod {}/{} container {} started (pid {})", run.ns, run.name, c.name,
                 c.pid);
    // kuberuntime's events for an image already present, as kubesim's images always are.
    EventSource src{"kubelet", cfg_.node_name};
    std::string part = container_field_path(c.name);
    events_.record(pod, "Normal", "Pulled",
                   "Container image \"" + image_name + "\" already present on machine" +
                       (image->oci ? "" : " (host binary fallback: not in the image store)"),
                   src, part);
    events_.record(pod, "Normal", "Created", "Created container: " + c.name, src, part);
    events_.record(pod, "Normal", "Started", "Started container " + c.name, src, part);
  } catch (const EnvError& e) {
    c.waiting_reason = "CreateContainerConfigError";
    c.waiting_message = e.what();
    c.next_start = Clock::now() + std::chrono::seconds(2);
  } catch (const std::exception& e) {
    release_container(c);
    c.waiting_reason = "RunContainerError";
    c.waiting_message = e.what();
    c.backoff_s = std::min(300, std::max(10, c.backoff_s * 2));
    c.next_start = Clock::now() + std::chrono::seconds(c.backoff_s);
    ++c.restarts;
  }
}

// The file argv[0] names: one of the image's own programs, else a PATH lookup as the
// runtime does it. A miss is containerd's "executable file not found" start error.
bool Kubelet::resolve_program(const Image& image, ContainerSpec& cs, ContainerRun& c) {
  const std::string& argv0 = cs.argv[0];
  if (auto it = image.binaries.find(argv0); it != image.binaries.end()) {
    cs.executable = it->second;
    return true;
  }
  std::string path;
  for (const auto& [k, v] : cs.env) {
    if (k == "PATH") path = v;
  }
  cs.executable = resolve_executable(argv0, path);
  if (!cs.executable.empty()) return true;
  c.waiting_reason = "RunContainerError";
  c.waiting_message = "exec: \"" + argv0 + "\": executable file not found in $PATH";
  c.backoff_s = std::min(300, std::max(10, c.backoff_s * 2));
  c.next_start = Clock::now() + std::chrono::seconds(c.backoff_s);
  ++c.restarts;
  return false;
}

void Kubelet::reap(PodRun& run, const json& pod) {
  std::string policy = pod["spec"].value("restartPolicy", "Always");
  for_each_container(run, [&](ContainerRun& c) {
    if (c.pid < 0) return;
    // Peek first (WNOWAIT): while the exited process is a zombie its pid, which is also its
    // process group's id, cannot be reused. A container ends with its main process, as when a
    // runtime's pid 1 exits: what it started (nginx's workers, a shell's children) goes too,
    // instead of living on as orphans with nobody to stop them.
    siginfo_t info{};
    if (waitid(P_PID, c.pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != c.pid) {
      return;
    }
    kill(-c.pid, SIGKILL);
    int status = 0;
    if (waitpid(c.pid, &status, 0) != c.pid) return;
    c.pid = -1;
    release_container(c);
    c.ready = false;
    c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    c.finished_at = now_rfc3339();
    if (run.terminating) return;
    // An init container that succeeded is done whatever the policy; one that failed runs
    // again unless the policy is Never (the pod then fails).
    bool again = c.init ? policy != "Never" && *c.exit_code != 0
                            : policy == "Always" || (policy == "OnFailure" && *c.exit_code != 0);
    if (again) {
      // CrashLoopBackOff: 10s doubling to 5 minutes, as the kubelet does.
      c.backoff_s = std::min(300, std::max(10, c.backoff_s * 2));
      c.next_start = Clock::now() + std::chrono::seconds(c.restarts == 0 ? 1 : c.backoff_s);
      c.waiting_reason = c.restarts == 0 ? "" : "CrashLoopBackOff";
      ++c.restarts;
    }
  });
}

void Kubelet::record_killing(const PodRun& run, const ContainerRun& c) {
  // The pod may be gone from the store already; the event names it as it was.
  json ref = {{"kind", "Pod"},
              {"apiVersion", "v1"},
              {"metadata", {{"name", run.name}, {"namespace", run.ns}, {"uid", run.uid}}}};
  events_.record(ref, "Normal", "Killing", "Stopping container " + c.name,
                 {"kubelet", cfg_.node_name}, container_field_path(c.name));
}

void Kubelet::terminate(PodRun& run, const json& pod) {
  run.terminating = true;
  int grace = pod["metadata"].value("deletionGracePeriodSeconds",
                                    pod["spec"].value("terminationGracePeriodSeconds", 30));
  run.kill_at = Clock::now() + std::chrono::seconds(grace);
  for_each_container(run, [&](ContainerRun& c) {
    if (c.pid <= 0) return;
    signal_container(c, SIGTERM);
    record_killing(run, c);
  });
}

void Kubelet::teardown(PodRun& run) {
  for_each_container(run, [&](ContainerRun& c) {
    if (c.pid <= 0) return;
    signal_container(c, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    c.pid = -1;
    release_container(c);
  });
  // Whatever is still in the pod's network namespace (a container crun had not yet reported)
  // ends with the pod.
  if (!run.netns.empty()) {
    kill_processes_in(run.netns);
    delete_netns(run.netns);
  }
  std::error_code ec;
  fs::remove_all(run.dir, ec);
}

}  // namespace lpk::kubesim
