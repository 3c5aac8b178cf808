#pragma once
// `lpk-agent router ...`: options, the route source (the pods of the namespace, or
// --routes-file), the Router, signals. agent/main.cpp dispatches here.

#include <span>
#include <string>

namespace lpk::router {

/// Runs the mode with the arguments after `router`; returns the exit code (0 after SIGTERM or
/// SIGINT, 1 when it cannot start, 2 for a bad command line).
int run_router(std::span<const std::string> args);

}  // namespace lpk::router
