#pragma once
// `lpk-proxy ide vscode`: writes, or merges into, a project's .vscode/tasks.json and launch.json so
// that F5 starts a connect session, waits for its `ready` line, debugs the program with the
// session's environment (connect's --env-file) and ends the session when debugging stops.
// JetBrains IDEs read the same env file (docs/ide.md).
// The JSON is built and merged by pure functions; run_ide() does the file I/O.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "kube/config.hpp"

namespace lpk::proxy {

/// JSON that keeps its keys in the order read or written, so that a merged file keeps the user's.
using IdeJson = nlohmann::ordered_json;

struct IdeOptions {
  std::string ide;                   ///< the IDE: "vscode" (the only one that needs files)
  std::string service;               ///< --service; empty: an outbound-only session
  kube::LoadOptions kube;            ///< --kubeconfig, --context, -n/--namespace for connect
  std::filesystem::path dir = ".";   ///< --dir: the project folder that holds .vscode/
  std::string debugger = "node";     ///< --debugger: the launch configuration's "type"
  std::string program = "${file}";   ///< --program: what the launch configuration debugs
  std::string proxy = "lpk-proxy";   ///< the lpk-proxy the tasks run (main: this binary)
};

inline constexpr const char* kIdeUsage =
    "usage: lpk-proxy ide vscode [--service NAME] [-n NS] [--kubeconfig FILE] [--context NAME]\n"
    "           [--dir DIR] [--debugger TYPE] [--program PATH]\n"
    "Writes (or merges into) DIR/.vscode/tasks.json and launch.json: a background task that runs\n"
    "`connect` and is ready on its `ready` line, and a launch configuration (type TYPE, default\n"
    "node) with lpk's env file that starts and ends the session. Entries of the same label or\n"
    "name are replaced; the others are kept. JetBrains IDEs: see docs/ide.md.";

/// Parses the words after `ide`. Throws std::invalid_argument (one line) on a bad command line.
IdeOptions parse_ide_options(std::span<const std::string> args);

/// The names ide gives its entries, from the service (or "outbound").
struct IdeNames {
  std::string connect_task;  ///< the background task that runs connect
  std::string stop_task;     ///< ends the connect task (VS Code's terminate command)
  std::string end_task;      ///< the postDebugTask: stop, then `lpk-proxy restore`
  std::string launch;        ///< the launch configuration
  std::string input;         ///< the id of the command input the stop task uses
  std::string env_file;      ///< connect's --env-file, with ${workspaceFolder}
};
IdeNames ide_names(const IdeOptions& o);

/// tasks.json's generated part: {"version", "tasks": [...], "inputs": [...]}.
IdeJson vscode_tasks(const IdeOptions& o);

/// launch.json's generated part: {"version", "configurations": [...]}.
IdeJson vscode_launch(const IdeOptions& o);

/// `existing` with `generated`'s arrays merged in: an entry of `generated` replaces the one of
/// `existing` with the same key ("label" of tasks, "name" of configurations, "id" of inputs),
/// or is appended; every other entry and key of `existing` stays as it was. Throws
/// std::invalid_argument when `existing` is not an object or such an array is not an array.
IdeJson merge_vscode(IdeJson existing, const IdeJson& generated);

/// `lpk-proxy ide ...`: returns the exit code (2: bad flags, 1: a file could not be written).
int run_ide(std::span<const std::string> args);

}  // namespace lpk::proxy
