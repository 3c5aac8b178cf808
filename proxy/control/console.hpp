#pragma once
// What lpk-proxy prints on stdout: the stable lines scripts and tests read (declared here, once;
// tunnel/console_line.hpp explains the contract) and the progress of the steps that change the
// cluster. Errors go to stderr, one line each, prefixed "lpk-proxy: ".

#include <string>
#include <string_view>

#include "proxy/tunnel/console_line.hpp"

namespace lpk::proxy::console {

using tunnel::ConsoleLine;
using tunnel::print_line;

// Both commands.
inline constexpr ConsoleLine kDns{"dns", "dns {}:{}", R"(^dns (\S+):([0-9]+)$)"};
inline constexpr ConsoleLine kReady{"ready", "ready", R"(^ready$)"};
// `run`: one per mapping, with the bound address ([v6]:port) and the target.
inline constexpr ConsoleLine kListen{"listen", "listen {} -> {}", R"(^listen (\S+) -> (\S+)$)"};
// `connect`.
// The project file it read (app/project_file.hpp), before anything else.
inline constexpr ConsoleLine kProjectFile{"project_file", "project file: {}",
                                          R"(^project file: (.+)$)"};
inline constexpr ConsoleLine kService{"service", "service {}.{} -> {} ports {}",
                                      R"(^service ([^. ]+)\.(\S+) -> (\S+) ports (\[.*\])$)"};
inline constexpr ConsoleLine kInbound{"inbound", "inbound: {} port {} -> localhost:{}",
                                      R"(^inbound: (.+) port ([0-9]+) -> localhost:(\S+)$)"};
// A routed session (--route-header): which requests of the service come to this machine.
inline constexpr ConsoleLine kRoute{"route", "route: service {} requests with {}: {} -> this machine",
                                    R"(^route: service (\S+) requests with ([^:]+): (\S+) -> this machine$)"};
inline constexpr ConsoleLine kTunnelUp{"tunnel_up", "tunnel up: pod {} (session {})",
                                       R"(^tunnel up: pod (\S+) \(session ([0-9a-f]+)\)$)"};
inline constexpr ConsoleLine kTunnelClosed{"tunnel_closed", "tunnel closed: pod {} ({})",
                                           R"(^tunnel closed: pod (\S+) \((.+)\)$)"};
inline constexpr ConsoleLine kTunnels{"tunnels", "tunnels: {} of {} agents connected",
                                      R"(^tunnels: ([0-9]+) of ([0-9]+) agents connected$)"};
inline constexpr ConsoleLine kEnvironment{
    "environment",
    "environment: {} variables from pod {} ({} service links point at lpk), {} files under {}",
    R"(^environment: ([0-9]+) variables from pod (\S*) \(([0-9]+) service links point at lpk\), ([0-9]+) files under (\S+)$)"};
inline constexpr ConsoleLine kNotImported{"not_imported", "not imported: {} ({})",
                                          R"(^not imported: (\S+) \((.*)\)$)"};
// The agent reported that the container's files changed (a configMap or secret updated, a token
// rotated) and the local copies were replaced.
inline constexpr ConsoleLine kFilesUpdated{
    "files_updated", "files updated: {} written, {} removed under {}",
    R"(^files updated: ([0-9]+) written, ([0-9]+) removed under (\S+)$)"};
// `connect --resolver`: the machine's resolver points at the session's stub (mode: resolved or
// resolv.conf), and is put back when the session ends.
inline constexpr ConsoleLine kResolver{"resolver", "system resolver: {} -> {}:{}",
                                       R"(^system resolver: (\S+) -> (\S+):([0-9]+)$)"};
inline constexpr ConsoleLine kResolverBack{"resolver_back", "system resolver put back ({})",
                                           R"(^system resolver put back \((.*)\)$)"};
inline constexpr ConsoleLine kEnvFile{"env_file", "env file: {}", R"(^env file: (.+)$)"};
inline constexpr ConsoleLine kWaitingForCommand{
    "waiting_for_command", "waiting for the command to exit (Ctrl-C again stops it)",
    R"(^waiting for the command to exit)"};
inline constexpr ConsoleLine kCommandExited{"command_exited", "command exited with {}",
                                            R"(^command exited with ([0-9]+)$)"};
// `connect --run SERVICE=...`: one per service's command.
inline constexpr ConsoleLine kServiceCommandExited{
    "service_command_exited", "command of {} exited with {}",
    R"(^command of (\S+) exited with ([0-9]+)$)"};

/// The table above as JSON (`lpk-proxy __console-lines`).
std::string lines_json();

/// Reports steps as they happen: on a terminal a waiting step rewrites its own line, otherwise
/// every step is one plain line.
class Progress {
 public:
  explicit Progress(bool terminal);
  static Progress for_stdout();
  void step(const std::string& line);     ///< a finished step, kept on screen
  void waiting(const std::string& line);  ///< a state that will be replaced by the next one
  void done();                            ///< ends a waiting line

 private:
  /// With --output json (tunnel::set_json_lines): {"event":"progress"|"waiting","text":...}.
  void print_json(std::string_view event, const std::string& line);

  bool terminal_;
  std::string last_waiting_;
  bool open_line_ = false;
};

}  // namespace lpk::proxy::console
