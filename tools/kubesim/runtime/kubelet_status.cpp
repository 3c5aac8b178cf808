// Kubelet: readiness probes (tcpSocket, httpGet; exec probes are not run and count as
// passing) from the node namespace, and the pod status written back to the API.

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/coro.hpp"
#include "tools/kubesim/runtime/kubelet.hpp"
#include "tools/kubesim/runtime/netns.hpp"

namespace lpk::kubesim {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

int resolve_port(const json& port, const json& container) {
  if (port.is_number_integer()) return port.get<int>();
  std::string name = port.is_string() ? port.get<std::string>() : "";
  for (const auto& p : container.value("ports", json::array())) {
    if (p.value("name", "") == name) return p.value("containerPort", 0);
  }
  return std::atoi(name.c_str());
}

// One probe attempt: connect (and for httpGet, expect a 2xx/3xx status line).
asio::awaitable<bool> run_probe(std::string ip, int port, std::string http_path, int timeout_s) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code bad;
  tcp::endpoint target(asio::ip::make_address(ip, bad), uint16_t(port));
  if (bad) co_return false;
  int fd = socket_in_netns(node_netns(), target.address().is_v6() ? AF_INET6 : AF_INET,
                           SOCK_STREAM);
  if (fd < 0) co_return false;
  tcp::socket sock(ex, target.protocol(), fd);
  asio::steady_timer timer(ex, std::chrono::seconds(timeout_s));
  auto attempt = [&]() -> asio::awaitable<bool> {
    auto [ec] = co_await sock.async_connect(target, kTuple);
    if (ec) co_return false;
    if (http_path.empty()) co_return true;
    // The prober's Host is net.JoinHostPort(ip, port): an IPv6 address in brackets.
    std::string host = target.address().is_v6() ? "[" + ip + "]" : ip;
    std::string req = "GET " + http_path + " HTTP/1.1\r\nHost: " + host + ":" +
                      std::to_string(port) +
                      "\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\n"
                      "Connection: close\r\n\r\n";
    auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(req), kTuple);
    if (wec) co_return false;
    std::string buf;
    auto [rec, rn] =
        co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), "\r\n", kTuple);
    if (rec || buf.size() < 12) co_return false;
    int code = std::atoi(buf.substr(9, 3).c_str());
    co_return code >= 200 && code < 400;
  };
  auto result = co_await (attempt() || timer.async_wait(kTuple));
  co_return result.index() == 0 && std::get<0>(result);
}

}  // namespace

void Kubelet::probe(PodRun& run, ContainerRun& c, const json& pod) {
  if (c.pid < 0) return;
  const json* spec = nullptr;
  for (const auto& cs : pod["spec"]["containers"]) {
    if (cs["name"] == c.name) spec = &cs;
  }
  if (!spec || !spec->contains("readinessProbe")) {
    c.ready = true;
    return;
  }
  const json& p = (*spec)["readinessProbe"];
  if (c.probing || Clock::now() < c.next_probe) return;
  int port = 0;
  std::string path;
  if (p.contains("tcpSocket")) {
    port = resolve_port(p["tcpSocket"].value("port", json(0)), *spec);
  } else if (p.contains("httpGet")) {
    port = resolve_port(p["httpGet"].value("port", json(0)), *spec);
    path = p["httpGet"].value("path", "/");
  } else {
    c.ready = true;  // exec probes are not run by kubesim
    return;
  }
  c.probing = true;
  c.next_probe = Clock::now() + std::chrono::seconds(p.value("periodSeconds", 10));
  std::string uid = run.uid, name = c.name;
  int threshold = p.value("failureThreshold", 3);
  asio::co_spawn(io_, run_probe(run.ip, port, path, p.value("timeoutSeconds", 1)),
                 [this, alive = alive_, uid, name, threshold](std::exception_ptr, bool ok) {
                   if (!*alive) return;
                   auto it = pods_.find(uid);
                   if (it == pods_.end()) return;
                   for (auto& c : it->second.containers) {
                     if (c.name != name) continue;
                     c.probing = false;
                     if (ok) {
                       c.probe_failures = 0;
                       if (!c.ready) schedule();
                       c.ready = c.pid > 0;
                     } else if (++c.probe_failures >= threshold || !c.ready) {
                       if (c.ready) schedule();
                       c.ready = false;
                     }
                   }
                 });
}

namespace {

// What the status of a set of containers adds up to, for the pod's phase and conditions.
struct Summary {
  bool all_ready = true, any_running = false, all_done = true, all_ok = true;
};

json container_status(const ContainerRun& c, const json& pod, bool initialized, Summary& sum) {
  const json* spec = container_spec(pod, c.name);
  json st = {{"name", c.name},
             {"image", spec ? spec->value("image", "") : ""},
             {"imageID", c.image_id},
             {"ready", c.ready},
             {"restartCount", c.restarts},
             {"started", c.pid > 0}};
  if (!initialized && c.instances == 0 && !c.init) {
    // Whatever held it back before (a volume at admission), it now waits for the init
    // containers, as the kubelet reports it.
    st["state"] = {{"waiting", {{"reason", "PodInitializing"}}}};
    sum.all_done = false;
  } else if (c.pid > 0) {
    st["containerID"] = c.container_id;
    st["state"] = {{"running", {{"startedAt", c.started_at}}}};
    sum.any_running = true;
    sum.all_done = false;
  } else if (!c.waiting_reason.empty() || c.next_start != Clock::time_point{}) {
    std::string reason = c.waiting_reason.empty() ? "ContainerCreating" : c.waiting_reason;
    st["state"] = {{"waiting", {{"reason", reason}}}};
    if (!c.waiting_message.empty()) st["state"]["waiting"]["message"] = c.waiting_message;
    sum.all_done = false;
  } else if (c.exit_code) {
    st["state"] = {{"terminated",
                    {{"exitCode", *c.exit_code},
                     {"reason", *c.exit_code == 0 ? "Completed" : "Error"},
                     {"startedAt", c.started_at},
                     {"finishedAt", c.finished_at}}}};
    if (*c.exit_code != 0) sum.all_ok = false;
  } else {
    st["state"] = {{"waiting", {{"reason", "ContainerCreating"}}}};
    sum.all_done = false;
  }
  if (c.exit_code && c.pid > 0) {
    st["lastState"] = {
        {"terminated", {{"exitCode", *c.exit_code}, {"finishedAt", c.finished_at}}}};
  }
  sum.all_ready = sum.all_ready && c.ready;
  return st;
}

}  // namespace

void Kubelet::write_status(PodRun& run, const json& pod) {
  json statuses = json::array(), init_statuses = json::array();
  Summary sum, init;
  for (const auto& c : run.containers) {
    statuses.push_back(container_status(c, pod, run.initialized, sum));
  }
  for (const auto& c : run.init_containers) {
    init_statuses.push_back(container_status(c, pod, run.initialized, init));
  }
  std::string phase = "Pending";
  if (!run.initialized) {
    // An init container that failed and will not run again (restartPolicy Never) fails the pod.
    if (!init.all_ok && pod["spec"].value("restartPolicy", "Always") == "Never") phase = "Failed";
  } else if (sum.any_running) {
    phase = "Running";
  } else if (sum.all_done) {
    phase = sum.all_ok ? "Succeeded" : "Failed";
  }
  bool all_ready = sum.all_ready, any_running = sum.any_running;
  json old = pod.value("status", json::object());
  auto cond = [&](const char* type, bool ok) {
    std::string s = ok ? "True" : "False";
    std::string when = run.start_time;
    for (const auto& o : old.value("conditions", json::array())) {
      if (o["type"] == type && o["status"] == s)
        when = o.value("lastTransitionTime", when);
      else if (o["type"] == type)
        when = now_rfc3339();
    }
    return json{
        {"type", type}, {"status", s}, {"lastProbeTime", nullptr}, {"lastTransitionTime", when}};
  };
  json st = {{"phase", phase},
             {"conditions",
              {cond("PodReadyToStartContainers", run.sandbox_ready),
               cond("Initialized", run.initialized),
               cond("Ready", all_ready && any_running),
               cond("ContainersReady", all_ready && any_running), cond("PodScheduled", true)}},
             {"hostIP", cfg_.network.node_ip()},
             {"hostIPs", {{{"ip", cfg_.network.node_ip()}}}},
             {"podIP", run.ip},
             {"podIPs", {{{"ip", run.ip}}}},
             {"startTime", run.start_time},
             {"containerStatuses", statuses},
             {"initContainerStatuses", init_statuses},
             {"qosClass", "BestEffort"}};
  if (init_statuses.empty()) st.erase("initContainerStatuses");
  if (!run.sandbox_ready) st.erase("podIP"), st.erase("podIPs");  // no sandbox, no address yet
  if (st == old) return;
  json copy = pod;
  copy["status"] = st;
  copy["metadata"].erase("resourceVersion");
  rest_.update_object(resource_by_plural("pods"), copy, true);
}

}  // namespace lpk::kubesim
