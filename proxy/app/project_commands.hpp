#pragma once
// `lpk-proxy config validate [FILE]` and `lpk-proxy init`: the commands of the project file
// (project_file.hpp).

#include <string>
#include <vector>

namespace lpk::proxy {

inline constexpr const char* kConfigUsage =
    "usage: lpk-proxy config validate [FILE]\n"
    "  checks FILE (default: the lpk.yaml that connect would read, found from the current folder\n"
    "  upward) and prints each error as FILE:LINE:COLUMN: MESSAGE; exit code 1 on an error";

inline constexpr const char* kInitUsage =
    "usage: lpk-proxy init [--service NAME] [-n NS] [--kubeconfig FILE] [--context NAME]\n"
    "                      [--file PATH | --file -] [--force]\n"
    "  writes a commented lpk.yaml (default: ./lpk.yaml; `-`: stdout) for SERVICE as the cluster\n"
    "  runs it now: its namespace, container and ports; --force replaces an existing file";

/// `config validate [FILE]`: 0 when the file is usable, 1 with one line per error, 2 for usage.
int run_config(const std::vector<std::string>& args);

/// `init`: reads the service's workload and writes a starter lpk.yaml.
int run_init(const std::vector<std::string>& args);

}  // namespace lpk::proxy
