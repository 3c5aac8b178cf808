#pragma once
// The names the router and the cluster-side code that deploys it agree on (issue 14): labels
// and annotations of the session agent pods and the router pods. Both sides include this
// header; a name changes here or nowhere.

#include <string_view>

namespace lpk::router {

/// Label of a session agent pod: the Service whose requests it may receive (value: the
/// Service's name). The router lists pods with `lpk.dev/route-for=SVC`.
inline constexpr std::string_view kRouteForLabel = "lpk.dev/route-for";
/// Label of a session agent pod: the lpk session id.
inline constexpr std::string_view kSessionLabel = "lpk.dev/session";
/// Annotation of a session agent pod: the request header that selects it, in lower case.
inline constexpr std::string_view kRouteHeaderAnnotation = "lpk.dev/route-header";
/// Annotation of a session agent pod: the value of that header that selects it.
inline constexpr std::string_view kRouteValueAnnotation = "lpk.dev/route-value";
/// Label of a router pod (value: the Service's name); the Service's selector points at it.
inline constexpr std::string_view kRouterLabel = "lpk.dev/router";

/// The header `--route-header VALUE` means when no NAME= is given.
inline constexpr std::string_view kDefaultRouteHeader = "x-lpk-route";

}  // namespace lpk::router
