#pragma once
// What a request carries to authenticate: headers (bearer token, basic, impersonation) and the
// TLS client certificate. Runs exec credential plugins and re-reads token files as client-go.
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kube/config.hpp"

namespace lpk::kube {

/// Thread-safe: current() and unauthorized() may be called from several threads; the exec
/// plugin runs at most once at a time (callers wait for its result).
class Credentials {
 public:
  explicit Credentials(RestConfig config);

  struct Material {
    std::vector<std::string> headers;  ///< "Authorization: Bearer ..", "Impersonate-User: .."
    std::string client_cert_pem, client_key_pem;
  };

  /// May run the exec plugin (blocking; cached until its expiry), re-reads tokenFile at most
  /// once a minute, and refreshes an expired oidc id-token (blocking: discovery and the token
  /// endpoint over libcurl; the new tokens are written back into the kubeconfig). Throws
  /// ConfigError when the plugin or the oidc refresh fails or the token file is unreadable.
  Material current();

  /// After a 401: the next current() runs the exec plugin again / re-reads the token file /
  /// refreshes the oidc id-token. Returns whether something can change (an exec plugin, a token
  /// file, an oidc refresh-token), i.e. whether
  /// retrying the request is worthwhile.
  bool unauthorized();

  const RestConfig& config() const { return config_; }

 private:
  struct ExecResult {
    std::string token, cert_pem, key_pem;
    std::optional<std::chrono::system_clock::time_point> expiry;
  };
  bool exec_active() const;
  std::string file_token_locked();
  std::string oidc_token_locked();

  RestConfig config_;
  std::mutex mutex_;
  std::optional<ExecResult> exec_;  ///< cached plugin result
  std::string file_token_;          ///< last good read of tokenFile
  std::optional<std::chrono::steady_clock::time_point> file_read_at_;
  bool oidc_refresh_ = false;  ///< a 401 asked for a new id-token even if it has not expired
};

}  // namespace lpk::kube
