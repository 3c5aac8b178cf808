#pragma once
// `lpk-agent restore-watch`: the restorer a `connect` session leaves in the cluster (a Job, see
// proxy/takeover/restorer.hpp). Reads the in-cluster configuration as client-go's
// rest.InClusterConfig does and runs proxy/takeover's watch_and_restore.

#include <span>
#include <string>

namespace lpk::agent {

/// Runs the mode with the arguments after `restore-watch`; returns the exit code (0 when it
/// restored or had nothing to do, 1 on failure, 2 for a bad command line).
int run_restore_watch(std::span<const std::string> args);

}  // namespace lpk::agent
