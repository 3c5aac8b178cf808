// ConnectSession's answers on the control socket: `lpk-proxy status`, `env`, `diagnostics`.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#include "proxy/connect/session.hpp"
#include "proxy/control/session_paths.hpp"

namespace lpk::proxy {

using nlohmann::json;

namespace {

json tunnel_status(const std::string& pod, const tunnel::TunnelClient& tunnel) {
  auto session = tunnel.session();
  const char* state = !session                      ? "connecting"
                      : session->accepting_streams() ? "ready"
                                                     : "resuming";
  json t = {{"pod", pod}, {"state", state}};
  const auto& history = tunnel.history();
  t["drops"] = history.drops;
  if (history.drops > 0) {
    t["last_drop"] = history.last_drop;
    t["last_drop_at"] = std::chrono::duration_cast<std::chrono::seconds>(
                            history.last_drop_at.time_since_epoch()).count();
    t["resumes"] = history.resumes;
    t["resumed_streams"] = history.resumed_streams;
    t["lost_streams"] = history.lost_streams;
    t["retransmitted_bytes"] = history.retransmitted_bytes;
  }
  if (session) {
    auto stats = session->stats();
    t["rtt_ms"] = stats.rtt.count() / 1000.0;
    t["streams"] = stats.streams_active;
    t["streams_total"] = stats.streams_opened;
    t["bytes_sent"] = stats.bytes_sent;
    t["bytes_received"] = stats.bytes_received;
    t["bytes_held"] = stats.bytes_held;
  }
  return t;
}

}  // namespace

std::size_t ConnectSession::tunnels_up() const {
  std::size_t n = 0;
  for (const auto& service : services_) {
    for (const auto& [pod, t] : service->agents) {
      n += t->session() && !t->session()->detached();
    }
  }
  return n;
}

std::size_t ConnectSession::agent_count() const {
  std::size_t n = 0;
  for (const auto& service : services_) n += service->agents.size();
  return n;
}

// The first service's fields stay at the top level, as a one-service session always had them;
// "replaced" lists every service of the session.
json ConnectSession::status() const {
  json tunnels = json::array();
  json replaced = json::array();
  std::string names;
  for (const auto& service : services_) {
    const auto& plan = service->plan;
    for (const auto& [pod, tunnel] : service->agents) {
      auto t = tunnel_status(pod, *tunnel);
      t["service"] = plan.service;
      tunnels.push_back(std::move(t));
    }
    json child = nullptr;
    if (service->child) child = {{"pid", service->child->pid()}, {"command", service->command}};
    json route = nullptr;
    if (const auto& r = plan.target.route) {
      route = {{"header", r->header},
               {"value", r->value},
               {"router", router_name(plan.service)},
               {"requests", service->route_stats.is_object()
                                ? service->route_stats.value("requests", json(nullptr))
                                : json(nullptr)}};
    }
    replaced.push_back({{"service", plan.service},
                        {"route", route},
                        {"workload", plan.target.workload.describe()},
                        {"container", plan.target.container.name},
                        {"agents", service->agents.size()},
                        {"child", child},
                        {"files", service->files ? json{{"root", service->files->root().string()},
                                                        {"count", service->files->size()},
                                                        {"updates", service->files_updates}}
                                                 : json(nullptr)}});
    if (!plan.service.empty()) names += (names.empty() ? "" : ", ") + plan.service;
  }
  const auto& first = replaced.at(0);
  auto dns = dns_endpoint_.address().to_string() + ":" + std::to_string(dns_endpoint_.port());
  return {{"service", names},
          {"namespace", plan_.ns},
          {"workload", first["workload"]},
          {"container", first["container"]},
          {"pid", static_cast<int>(::getpid())},
          {"child", first["child"]},
          {"dns", {{"address", dns}}},
          {"files", first["files"]},
          {"route", first["route"]},
          {"replaced", replaced},
          {"services", directory_->describe()},
          {"tunnels", tunnels}};
}

json ConnectSession::diagnostics() const {
  auto d = status();
  json routes = json::array();
  json mounts = json::array();
  for (const auto& service : services_) {
    for (const auto& r : service->plan.target.container.routes) {
      routes.push_back({{"service", service->plan.service},
                        {"service_port", r.service_port},
                        {"container_port", r.container_port},
                        {"name", r.name}});
    }
    for (const auto& m : service->plan.target.mounts) mounts.push_back(m);
  }
  d["routes"] = routes;
  d["mounts"] = mounts;
  d["address_slot"] = plan_.pool.to_string();
  d["log_dir"] = log_dir(plan_.session_id).string();
  d["session_dir"] = session_dir(plan_.session_id).string();
  d["dns_table_services"] = directory_->table().services.size();
  return d;
}

void ConnectSession::start_control() {
  control_ = std::make_unique<ControlServer>(side_.io().get_executor(), plan_.session_id,
                                             control_socket_path(plan_.session_id));
  control_->handle("status", [this] { return status(); });
  // The first service's, as `-- COMMAND` gets it.
  control_->handle("env", [this] {
    const auto& first = *services_.front();
    return json{{"env", first.imported}, {"from", first.imported_from}};
  });
  control_->handle("diagnostics", [this] { return diagnostics(); });
  if (auto started = control_->start(); !started) {
    spdlog::warn("no control socket: {}", started.error().message);
    std::fprintf(stderr, "lpk-proxy: %s; `lpk-proxy status` will not see this session\n",
                 started.error().message.c_str());
  }
}

}  // namespace lpk::proxy
