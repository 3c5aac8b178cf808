#pragma once
// GET .../pods/NAME/log: the options of PodLogOptions, the container the apiserver picks
// (validateContainer in k/k pkg/registry/core/pod/strategy.go), and the kubelet's reading of
// a CRI log file (k/k pkg/kubelet/kuberuntime/logs/logs.go): timestamps, tailLines,
// sinceSeconds/sinceTime, limitBytes, follow until the container ends.

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tools/kubesim/http_server.hpp"
#include "tools/kubesim/routes.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;
class Rest;
class Kubelet;

struct LogOptions {
  std::string container;
  bool follow = false, previous = false, timestamps = false;
  std::optional<int64_t> tail_lines, limit_bytes;
  std::optional<std::chrono::system_clock::time_point> since;
};

/// Parses the query as the apiserver decodes PodLogOptions; throws the 400 / 422 it sends.
LogOptions parse_log_options(const std::map<std::string, std::string>& q,
                             std::chrono::system_clock::time_point now);

/// The container the request is for; throws the apiserver's 400 when none or a wrong one.
std::string log_container(const json& pod, const std::string& requested);

/// What the kubelet writes for CRI log content (whole lines only) under the options (tail
/// and since apply; limitBytes is the caller's, over the whole response).
std::string format_cri_log(const std::string& cri, const LogOptions& o, bool apply_tail = true);

/// Serves the log subresource from the kubelet's files.
class PodLogs {
 public:
  PodLogs(Rest& rest, const Kubelet& kubelet) : rest_(rest), kubelet_(kubelet) {}
  asio::awaitable<bool> serve(Request& req, TlsStream& stream, const Route& r,
                              const std::map<std::string, std::string>& q);

 private:
  asio::awaitable<void> follow(TlsStream& stream, json pod, std::string container,
                               std::string file, size_t offset, LogOptions o, int64_t budget);

  Rest& rest_;
  const Kubelet& kubelet_;
};

}  // namespace lpk::kubesim
