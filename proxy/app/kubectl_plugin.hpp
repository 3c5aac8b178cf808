#pragma once
// `kubectl lpk ...`: kubectl runs the first `kubectl-lpk` on PATH (a link to lpk-proxy that the
// build puts next to it) with the words after `lpk`. kubectl does not read its global flags for
// a plugin; it passes them on, before or after the subcommand, in any form kubectl accepts
// (`-n demo`, `-ndemo`, `--namespace=demo`). This turns such a command line into lpk-proxy's.
// Pure; a flag lpk cannot honour is a one-line std::invalid_argument.

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lpk::proxy {

/// The name kubectl finds the plugin by; lpk-proxy run under it speaks as the plugin.
inline constexpr std::string_view kPluginName = "kubectl-lpk";

inline constexpr const char* kPluginUsage =
    "usage: kubectl lpk connect [--service NAME] [options] [-- COMMAND ARGS...]\n"
    "       kubectl lpk doctor [--service NAME] [--json]    check that connect would work\n"
    "       kubectl lpk restore [--all [-A]] [--force]      put back what a crashed session left\n"
    "       kubectl lpk routes [-A] [--json]                services shared by header routing\n"
    "       kubectl lpk status|env|diagnostics [--session ID] [--json | --output json]\n"
    "       kubectl lpk init --service NAME                 write a starter lpk.yaml\n"
    "       kubectl lpk config validate [FILE]              check an lpk.yaml\n"
    "       kubectl lpk resolver install|uninstall|status ...\n"
    "kubectl's --kubeconfig, --context and -n/--namespace apply to connect, doctor, restore,\n"
    "routes and init, "
    "before or after the command; `kubectl lpk COMMAND --help` lists a command's options.";

/// True when `argv0` (the program's argv[0]) names the plugin, whatever its directory.
bool invoked_as_plugin(std::string_view argv0);

/// kubectl's words after `lpk` -> lpk-proxy's arguments: the subcommand first, then kubectl's
/// global flags as lpk-proxy spells them, then the rest in order (a `--` and what follows it are
/// never read). Throws std::invalid_argument for --cluster and --user (lpk reads them from a
/// context), for a kube flag on a command that asks only this machine, and for a missing value.
std::vector<std::string> plugin_to_proxy_args(std::span<const std::string> args);

}  // namespace lpk::proxy
