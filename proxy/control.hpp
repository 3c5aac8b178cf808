#pragma once
// The control socket of a running session and its client, `lpk-proxy status|env|diagnostics`.
//
// Protocol: a client connects to <runtime dir>/<session>.sock (session_paths.hpp), writes one
// JSON line {"command":"status"} and reads one JSON line back:
//   {"ok":true,"command":"status","session":"<id>","result":{...}}
//   {"ok":false,"error":"unknown command \"x\" (known: diagnostics, env, status)"}
// then the server closes the connection. The socket is mode 0600 in a 0700 directory: only
// the user who runs the session can ask (the env reply holds the cluster's secrets).
//
// The shape of `result` is the session's business; the client prints these fields when they
// are there and ignores the rest:
//   status: {"service":"api","namespace":"demo","pid":123,"child":{"pid":124,"command":"..."},
//            "dns":{"address":"127.0.0.1:53"} or "dns":null,
//            "services":[{"name":"redis","namespace":"demo","address":"127.77.0.12",
//                         "ports":[6379]}],
//            "tunnels":[{"pod":"api-7d9f-abcde","state":"ready","rtt_ms":0.4,
//                        "streams":3,"streams_total":120}]}
//   env:    {"env":{"KEY":"value",...}} (or the map itself)
//   diagnostics: anything; printed as indented JSON.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <system_error>
#include <vector>

namespace lpk::proxy {

/// Serves the control socket of one session.
///
/// Lifetime and threads: handlers run on the executor's thread (the io thread), one request at
/// a time per connection; stop() (idempotent, also run by the destructor) closes the listener
/// and removes the socket file. Connections in progress finish on their own (each is bounded
/// by a timeout); they hold what they need.
class ControlServer {
 public:
  using Handler = std::function<nlohmann::json()>;

  ControlServer(boost::asio::any_io_executor executor, std::string session,
                std::filesystem::path socket_path);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  /// Registers the handler of `command` ("status", "env", "diagnostics", or any other name).
  /// A handler that throws gets {"ok":false,"error":what()}.
  void handle(const std::string& command, Handler handler);

  /// Creates the socket's directory (0700), removes a stale socket left by a dead session at
  /// the same path, binds, makes the socket 0600 and starts accepting. Returns an error with
  /// `problem` set to one sentence when the path is taken by a live session or cannot be used.
  std::error_code start(std::string& problem);

  void stop();

  const std::filesystem::path& socket_path() const;

  struct Shared;  ///< the state the accept loop and the connections share (control.cpp)

 private:
  std::shared_ptr<Shared> shared_;
};

/// Whether something answers at `socket_path`; a socket file with nobody behind it
/// (connection refused) is removed, and false is returned.
bool probe_control_socket(const std::filesystem::path& socket_path);

/// The sessions whose control sockets answer in `runtime_dir` (ids, sorted); stale sockets
/// found on the way are removed.
std::vector<std::string> live_sessions(const std::filesystem::path& runtime_dir);

/// Sends one request and returns the reply object, or nullopt with `error` set to one sentence.
/// Blocking (it is for the command line), bounded by `timeout`.
std::optional<nlohmann::json> control_request(
    const std::filesystem::path& socket_path, const std::string& command, std::string& error,
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
