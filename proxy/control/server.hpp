#pragma once
// The control socket of a running session (its client is control/client.hpp).
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
#include <string>
#include <system_error>
#include <vector>

#include "proxy/tunnel/error.hpp"

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
  /// the same path, binds, makes the socket 0600 and starts accepting. A Problem when the path
  /// is taken by a live session or cannot be used.
  tunnel::Result<void> start();

  void stop();

  const std::filesystem::path& socket_path() const;

  struct Shared;  ///< the state the accept loop and the connections share (control.cpp)

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace lpk::proxy
