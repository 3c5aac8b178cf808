#pragma once
// `lpk-proxy connect` and `lpk-proxy restore`: the subcommands that change the cluster. Each
// parses its options, prints one line for bad flags or kubeconfigs (exit 2), and always puts
// the workload back before it returns.

#include <string>
#include <vector>

namespace lpk::proxy {

/// Swaps the service's container for lpk-agent, serves the session (connect_session.hpp), and
/// restores the workload. Returns the child's exit code when there is a command.
int run_connect(const std::vector<std::string>& args);

/// Restores what dead sessions of this machine left changed; with --all, every workload lpk
/// changed in the namespace.
int run_restore(const std::vector<std::string>& args);

}  // namespace lpk::proxy
