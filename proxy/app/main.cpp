// lpk-proxy: the developer-machine end of lpk. Picks the command; each command parses its own
// options (app/options.hpp), builds its objects and runs them.

#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "proxy/app/resolver_command.hpp"
#include "proxy/app/connect_command.hpp"
#include "proxy/app/doctor.hpp"
#include "proxy/app/ide_command.hpp"
#include "proxy/app/kubectl_plugin.hpp"
#include "proxy/app/options.hpp"
#include "proxy/app/project_commands.hpp"
#include "proxy/app/routes_command.hpp"
#include "proxy/app/run_command.hpp"
#include "proxy/connect/child_process.hpp"
#include "proxy/control/client.hpp"
#include "proxy/control/console.hpp"
#include "lpk_version.hpp"

namespace {

constexpr const char* kUsage =
    "usage: lpk-proxy connect --service NAME [-n NS] [options] [-- COMMAND ARGS...]\n"
    "                                                  run a service of the cluster locally\n"
    "       lpk-proxy connect [-n NS] [options] [-- COMMAND ARGS...]\n"
    "                                                  reach the cluster's services by name\n"
    "       lpk-proxy status|env|diagnostics [--session ID] [--json | --output json]\n"
    "                                                  ask a running session\n"
    "       lpk-proxy restore [--all]                   put back what a crashed session left\n"
    "       lpk-proxy routes [-n NS | -A] [--json]      services shared by header routing\n"
    "       lpk-proxy doctor [--service NAME] [--json]  check that connect would work\n"
    "       lpk-proxy init --service NAME [-n NS]       write a starter lpk.yaml for a service\n"
    "       lpk-proxy config validate [FILE]            check an lpk.yaml\n"
    "       lpk-proxy run --agent HOST:PORT [options]   carry mapped services through an agent\n"
    "       lpk-proxy run --help                        options of run\n"
    "       lpk-proxy resolver install|uninstall|status [--dry-run] ...\n"
    "                                                  point the system resolver at the running\n"
    "                                                  session's stub DNS (connect --resolver\n"
    "                                                  does it for the session's length)\n"
    "       lpk-proxy ide vscode [--service NAME] [-n NS] [--dir DIR]\n"
    "                                                  write VS Code's tasks and launch entries\n"
    "       lpk-proxy --version                        print the version\n"
    "Linked as kubectl-lpk on PATH, it is the kubectl plugin: kubectl lpk COMMAND ...";

bool wants_help(const std::vector<std::string>& args) {
  return !args.empty() && (args[0] == "-h" || args[0] == "--help");
}

/// `kubectl lpk ...` (kubectl_plugin.hpp): lpk-proxy's arguments, or an exit code when the plugin
/// has answered by itself (usage, a flag it cannot honour).
std::optional<int> as_plugin(std::vector<std::string>& args) {
  if (args.empty() || wants_help(args)) {
    std::cout << lpk::proxy::kPluginUsage << "\n";
    return 0;
  }
  try {
    args = lpk::proxy::plugin_to_proxy_args(args);
  } catch (const std::exception& e) {
    return lpk::proxy::fail(e.what(), 2);
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (lpk::proxy::invoked_as_plugin(argv[0])) {
    if (auto answered = as_plugin(args)) return *answered;
  }
  if (args.empty() || wants_help(args)) {
    std::cout << kUsage << "\n";
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") return std::cout << "lpk-proxy " << lpk::kVersion << "\n", 0;
  auto command = args[0];
  args.erase(args.begin());
  using namespace lpk::proxy;
  if (command == "run") {
    if (wants_help(args)) return std::cout << kRunUsage << "\n", 0;
    return run_command(args);
  }
  if (command == "connect") {
    if (wants_help(args)) return std::cout << kConnectUsage << "\n", 0;
    return run_connect(args);
  }
  if (command == "restore") {
    if (wants_help(args)) return std::cout << kRestoreUsage << "\n", 0;
    return run_restore(args);
  }
  if (command == "status" || command == "env" || command == "diagnostics") {
    args.insert(args.begin(), command);
    return run_control_command(args, std::cout, std::cerr);
  }
  if (command == "doctor") {
    if (wants_help(args)) return std::cout << kDoctorUsage << "\n", 0;
    return run_doctor(args);
  }
  if (command == "resolver") return run_resolver(args);
  if (command == "routes") {
    if (wants_help(args)) return std::cout << kRoutesUsage << "\n", 0;
    return run_routes(args);
  }
  if (command == "ide") {
    if (wants_help(args)) return std::cout << kIdeUsage << "\n", 0;
    return run_ide(args);
  }
  if (command == "config") {
    if (wants_help(args)) return std::cout << kConfigUsage << "\n", 0;
    return run_config(args);
  }
  if (command == "init") {
    if (wants_help(args)) return std::cout << kInitUsage << "\n", 0;
    return run_init(args);
  }
  // Internal: the child's private resolv.conf (connect/child_process.hpp), and the table of the
  // stdout lines scripts read (control/console.hpp).
  if (command == "__child") return run_child_with_resolv_conf(args);
  if (command == "__console-lines") return std::cout << console::lines_json() << "\n", 0;
  std::fprintf(stderr, "lpk-proxy: unknown command '%s' (see lpk-proxy --help)\n",
               command.c_str());
  return 2;
}
