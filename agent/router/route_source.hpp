#pragma once
// Where routes come from, as pure conversions: the pods the two informers list (session agent
// pods and the original pods, proxy/tunnel/route_labels.hpp) or the routes file of tests and
// benchmarks. No I/O: route_watch.hpp reads the API and the file.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "agent/router/route_table.hpp"

namespace lpk::router {

/// Pods by name, as an informer keeps them.
using PodMap = std::map<std::string, nlohmann::json>;

/// Routes from the session agent pods (`lpk.dev/route-for`) and the original pods: a pod
/// counts once it is ready with a podIP; a session pod without its route annotations is
/// skipped; a pod that carries lpk's route-for or router label is never an original, even
/// when the original selector matches it (a session pod's labels may be copied from the
/// original template).
RouteSet route_set_from_pods(const PodMap& session_pods, const PodMap& original_pods);

/// Parses a routes file:
///   {"routes":[{"header":"x-lpk-route","value":"a","session":"id","target":"127.0.0.1:8081"}],
///    "originals":["127.0.0.1:8080"]}
/// Targets are IP:PORT ([v6]:PORT); header names are folded to lower case. nullopt with
/// `error` set when the text is not such a document.
std::optional<RouteSet> parse_routes_file(std::string_view text, std::string& error);

}  // namespace lpk::router
