#include "proxy/app/routes_command.hpp"

#include <cstdio>
#include <iostream>

#include "kube/client.hpp"
#include "kube/config.hpp"
#include "kube/objects.hpp"
#include "proxy/app/options.hpp"
#include "proxy/takeover/route_objects.hpp"
#include "proxy/takeover/session_record.hpp"

namespace lpk::proxy {

using nlohmann::json;
using kube::field;
using kube::text_of;

namespace {

/// "ready/all" of the pods `selector` picks in `ns`.
std::string pods_ready(kube::Client& client, const std::string& ns, const std::string& selector) {
  kube::ListOptions options;
  options.label_selector = selector;
  int ready = 0, all = 0;
  for (const auto& pod : client.list(kube::resource_path("v1", ns, "pods"), options)
                             .value("items", json::array())) {
    if (!kube::pod_active(pod)) continue;
    ++all;
    ready += kube::pod_ready(pod) ? 1 : 0;
  }
  return std::to_string(ready) + "/" + std::to_string(all);
}

/// One routed Service as `routes --json` shows it.
json describe(kube::Client& client, const json& service) {
  const auto& meta = field(service, "metadata");
  auto ns = text_of(field(meta, "namespace"));
  auto name = text_of(field(meta, "name"));
  json sessions = json::array();
  for (const auto& [id, member] : route_members(service)) {
    auto owner = SessionOwner::from_json(json::parse(member.owner, nullptr, false));
    sessions.push_back({{"session", id},
                        {"header", member.route.header},
                        {"value", member.route.value},
                        {"deployment", member.deployment},
                        {"agents_ready", pods_ready(client, ns, std::string(kSessionLabel) + "=" +
                                                                    id)},
                        {"host", owner.host},
                        {"pid", owner.pid},
                        {"started", owner.started}});
  }
  return {{"namespace", ns},
          {"service", name},
          {"router", router_name(name)},
          {"router_ready", pods_ready(client, ns, std::string(kRouterLabel) + "=" + name)},
          {"original_selector", original_selector(service)},
          {"sessions", sessions}};
}

void print_text(const json& routed) {
  if (routed.empty()) {
    std::cout << "no service is routed by lpk sessions\n";
    return;
  }
  std::printf("%-12s %-20s %-10s %-9s %-16s %-16s %-6s %s\n", "NAMESPACE", "SERVICE", "ROUTER",
              "SESSION", "HEADER", "VALUE", "AGENT", "OWNER");
  for (const auto& s : routed) {
    for (const auto& m : s["sessions"]) {
      auto owner = m["host"].get<std::string>() + " pid " + std::to_string(m["pid"].get<int>());
      std::printf("%-12s %-20s %-10s %-9s %-16s %-16s %-6s %s\n",
                  s["namespace"].get<std::string>().c_str(),
                  s["service"].get<std::string>().c_str(),
                  s["router_ready"].get<std::string>().c_str(),
                  m["session"].get<std::string>().c_str(), m["header"].get<std::string>().c_str(),
                  m["value"].get<std::string>().c_str(),
                  m["agents_ready"].get<std::string>().c_str(), owner.c_str());
    }
  }
}

}  // namespace

int run_routes(const std::vector<std::string>& args) {
  RoutesOptions options;
  try {
    options = parse_routes_options(args);
  } catch (const std::exception& e) {
    return fail(std::string(e.what()) + " (see lpk-proxy routes --help)", 2);
  }
  try {
    kube::Client client(kube::load_config(options.kube));
    auto ns = options.all_namespaces ? std::string() : client.config().namespace_;
    json routed = json::array();
    for (const auto& service : client.list(kube::resource_path("v1", ns, "services"))
                                   .value("items", json::array())) {
      if (!route_members(service).empty()) routed.push_back(describe(client, service));
    }
    if (options.json) {
      std::cout << json{{"routes", routed}}.dump() << "\n";
    } else {
      print_text(routed);
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace lpk::proxy
