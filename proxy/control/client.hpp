#pragma once
// The client of a session's control socket (control/server.hpp describes the protocol):
// `lpk-proxy status|env|diagnostics`, and the probes that tell live sessions from stale sockets.

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "proxy/tunnel/error.hpp"

namespace lpk::proxy {

/// True when `path` is a unix socket (not followed if it is a symlink).
bool is_socket_file(const std::filesystem::path& path);

/// Whether something answers at `socket_path`; a socket file with nobody behind it
/// (connection refused) is removed, and false is returned.
bool probe_control_socket(const std::filesystem::path& socket_path);

/// The sessions whose control sockets answer in `runtime_dir` (ids, sorted); stale sockets
/// found on the way are removed.
std::vector<std::string> live_sessions(const std::filesystem::path& runtime_dir);

/// Sends one request and returns the reply object, or a Problem (one sentence). Blocking (it is
/// for the command line), bounded by `timeout`.
tunnel::Result<nlohmann::json> control_request(
    const std::filesystem::path& socket_path, const std::string& command,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Human forms of the replies' results.
void print_status(const nlohmann::json& result, std::ostream& out);
void print_env(const nlohmann::json& result, std::ostream& out);

/// `lpk-proxy status|env|diagnostics [--session ID] [--json]`; args[0] is the command.
/// Without --session: $LPK_SESSION (set in the child of a session), else the only running
/// session; several make it list them and ask for --session. Returns 0 on success, 1 when no
/// session answers or the request fails, 2 for bad flags; messages go to `err`, one line each.
int run_control_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace lpk::proxy
