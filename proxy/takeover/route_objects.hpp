#pragma once
// Header-routed sessions (`connect --route-header`), as pure functions over API objects. Such a
// session replaces nothing of the application: its agent runs in a Deployment of its own, made
// from the workload's pod template (so the environment and files it reports are the
// service's) and selected by no Service; a router (`lpk-agent router`, one per service, shared by
// every routed session of it) takes the Service's traffic and sends each request carrying a
// session's header to that session's agent, all others to the original pods. While any session
// routes it, the Service selects the router's pods and keeps its own selector and the sessions
// in annotations; the last session to leave puts the selector back and removes the router.
// No I/O: route.cpp fetches and sends; tests feed objects from files.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/takeover/workload.hpp"
#include "proxy/tunnel/route_labels.hpp"

namespace lpk::proxy {

// What the router reads (agent/router: docs/router.md): the router's own pods, and the agent pods
// of routed sessions with the header and value that pick them.
using tunnel::kDefaultRouteHeader;
using tunnel::kRouteForLabel;
using tunnel::kRouteHeaderAnnotation;
using tunnel::kRouterLabel;
using tunnel::kRouteValueAnnotation;
/// On the Service while it is routed: its own selector (JSON), and the sessions routing it
/// (JSON object: session id -> {header, value, deployment, owner}).
inline constexpr const char* kOriginalSelectorAnnotation = "lpk.dev/original-selector";
inline constexpr const char* kRouteSessionsAnnotation = "lpk.dev/route-sessions";
/// On a routed session's Deployment: the Service it routes (restore leaves the route).
inline constexpr const char* kRouteServiceAnnotation = "lpk.dev/route-service";
inline constexpr std::uint16_t kRouterAdminPort = 15090;

/// The header a routed session's requests carry, and its value.
struct RouteSpec {
  std::string header = kDefaultRouteHeader;  ///< lower case
  std::string value;
};

/// True for an RFC 9110 token (what a header name must be).
bool is_http_token(std::string_view text);

/// `--route-header [NAME=]VALUE`; an empty value is the session id. Throws
/// std::invalid_argument with one sentence.
RouteSpec parse_route_header(const std::string& text, const std::string& session_id);

/// Object names, each a DNS label of at most 63 characters (long service names are cut and a
/// hash keeps them apart).
std::string router_name(const std::string& service);          // lpk-router-SVC
std::string original_service_name(const std::string& service);  // lpk-original-SVC
std::string route_lock_name(const std::string& service);      // lpk-route-SVC (a Lease)
std::string routed_deployment_name(const std::string& service, const std::string& session_id);

/// A session routing a service, as kRouteSessionsAnnotation keeps it.
struct RouteMember {
  RouteSpec route;
  std::string deployment;  ///< the session's agent Deployment
  std::string owner;       ///< the kSessionAnnotation value (id, host, pid, started)
};
using RouteMembers = std::map<std::string, RouteMember>;  // by session id

/// The sessions routing `service` (empty when it is not routed).
RouteMembers route_members(const nlohmann::json& service);
/// The selector the Service had before routing (its own while it is not routed).
nlohmann::json original_selector(const nlohmann::json& service);

/// `service` (as read, with its resourceVersion: for PUT) routed to the router for `members`;
/// the original selector saved the first time. Members empty: `service` as it was before
/// routing, lpk's annotations gone.
nlohmann::json with_route_members(const nlohmann::json& service, const RouteMembers& members);

/// What the router needs of the service: each TCP port the Service reaches on the pods (the
/// container port), named as the container names it (so that a named targetPort still
/// resolves on the router's pods).
struct RoutedPort {
  std::string name;  ///< the container port's name; may be empty
  std::uint16_t container_port = 0;
  std::uint16_t service_port = 0;
};
std::vector<RoutedPort> routed_ports(const nlohmann::json& pod_spec, const std::string& container,
                                     const std::vector<PortRoute>& routes);

/// Where the router answers /healthz and /routes: kRouterAdminPort, or the next port none of
/// `ports` uses.
std::uint16_t router_admin_port(const std::vector<RoutedPort>& ports);

/// lpk's Service of the original pods: the original selector, one port per routed port
/// (targetPort as a number). The router falls back to it when it knows no original pod.
nlohmann::json original_service(const nlohmann::json& service,
                                const std::vector<RoutedPort>& ports);

/// The router: one replica of `lpk-agent router` (image `image`), labelled kRouterLabel, with
/// its ServiceAccount, which may read pods (it watches the sessions' and the originals').
struct RouterSpec {
  std::string ns;
  std::string service;
  std::string image;
  nlohmann::json selector;  ///< the original selector
  std::vector<RoutedPort> ports;
  std::string original_cluster_ip;  ///< of original_service; "" while it has none
  std::uint16_t admin_port = kRouterAdminPort;
};
nlohmann::json router_deployment(const RouterSpec& spec);
/// The Service (named as the router) of the router's admin port: sessions read their request
/// counts from its /routes through their tunnels.
nlohmann::json router_admin_service(const RouterSpec& spec);
nlohmann::json router_service_account(const RouterSpec& spec);
nlohmann::json router_role(const RouterSpec& spec);
nlohmann::json router_role_binding(const RouterSpec& spec);

/// A routed session's agent Deployment (0 replicas; scaled up once its tunnel Secret exists):
/// `pod_template` (the workload's) with `container` swapped for the agent, its labels replaced
/// by lpk's (no Service selects it; the router finds it by kRouteForLabel) and the route in its
/// annotations. kCreatedBySessionAnnotation makes restore delete it.
nlohmann::json routed_deployment(const std::string& ns, const std::string& service,
                                 const std::string& session_id, const RouteSpec& route,
                                 const nlohmann::json& pod_template, const std::string& container,
                                 const AgentSpec& agent);

}  // namespace lpk::proxy
