#pragma once
// `lpk-proxy run`: the data path alone, with a static map of services and one agent reached over
// TCP (--agent) or a pod port-forward (--agent-pod). Prints `listen`, `dns` and `ready` lines
// (control/console.hpp) and serves until SIGINT/SIGTERM.

#include <string>
#include <vector>

namespace lpk::proxy {

/// Returns the exit code: 0 after a signal, 2 for bad flags or kubeconfig, 1 when the stub DNS
/// cannot start, 3 when the tunnel cannot be made (another proxy took the agent, a refused
/// secret).
int run_command(const std::vector<std::string>& args);

}  // namespace lpk::proxy
