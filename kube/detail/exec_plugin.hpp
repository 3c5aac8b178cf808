#pragma once
// Exec credential plugins (client.authentication.k8s.io v1 and v1beta1) as client-go's
// plugin/pkg/client/auth/exec runs them: environment, KUBERNETES_EXEC_INFO, interactive mode,
// stderr passed through, ExecCredential checked strictly.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "kube/config.hpp"

namespace lpk::kube::detail {

struct ExecCredential {
  std::string token, cert_pem, key_pem;
  std::optional<std::chrono::system_clock::time_point> expiry;
};

/// The KUBERNETES_EXEC_INFO document.
std::string exec_info_json(const ExecConfig& exec, const ClusterConfig& cluster, bool interactive);

/// Throws ConfigError("kube: exec credential plugin <command>: <what>").
[[noreturn]] void fail_exec_plugin(const ExecConfig& exec, const std::string& what);

/// Checks the plugin's stdout; throws ConfigError with a one-line reason.
ExecCredential parse_exec_credential(std::string_view out, const ExecConfig& exec);

/// Runs the plugin and waits for it (blocking). Throws ConfigError. In exec_plugin_run.cpp,
/// part of lpk::kube only: the rest of this header is pure (lpk::kube_parse).
ExecCredential run_exec_plugin(const ExecConfig& exec, const ClusterConfig& cluster);

/// RFC 3339 ("2026-01-02T03:04:05Z", fractions and offsets allowed); nullopt if malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s);

}  // namespace lpk::kube::detail
