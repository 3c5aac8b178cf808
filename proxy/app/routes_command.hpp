#pragma once
// `lpk-proxy routes`: the services lpk's router shares by header (connect --route-header) and the
// sessions routing each, read from the cluster (the Services' annotations, the router's and the
// sessions' pods): what a developer checks before choosing a header value, or to see who else
// works on a service.

#include <string>
#include <vector>

namespace lpk::proxy {

int run_routes(const std::vector<std::string>& args);

}  // namespace lpk::proxy
