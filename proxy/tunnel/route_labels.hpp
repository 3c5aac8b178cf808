#pragma once
// The names by which lpk's router (agent/router, `lpk-agent router`) and the cluster side of
// header-routed sessions (proxy/takeover/route_objects.hpp) find each other's pods (issue 14):
// labels and annotations of the session agent pods and the router pods. Both ends include this
// header, as they share the tunnel's wire format; a name changes here or nowhere.

namespace lpk::tunnel {

/// Label of a session agent pod: the Service whose requests it may receive (value: the
/// Service's name). The router lists pods with `lpk.dev/route-for=SVC`.
inline constexpr const char* kRouteForLabel = "lpk.dev/route-for";
/// Label of every object a session creates, a session agent pod's included: the session id.
inline constexpr const char* kSessionLabel = "lpk.dev/session";
/// Annotation of a session agent pod: the request header that selects it, in lower case.
inline constexpr const char* kRouteHeaderAnnotation = "lpk.dev/route-header";
/// Annotation of a session agent pod: the value of that header that selects it.
inline constexpr const char* kRouteValueAnnotation = "lpk.dev/route-value";
/// Label of a router pod (value: the Service's name); the Service's selector points at it.
inline constexpr const char* kRouterLabel = "lpk.dev/router";
/// The header `--route-header VALUE` means when no NAME= is given.
inline constexpr const char* kDefaultRouteHeader = "x-lpk-route";

}  // namespace lpk::tunnel
