#pragma once
// Tokens in the environment overrides of `connect` (`--env NAME=VALUE`, lpk.yaml's `env:`), in
// the spirit of Bridge to Kubernetes' KubernetesLocalProcessConfig.yaml: a value may name what
// only the session knows, and the session fills it in when it imports the environment.
//
//   ${service:NAME}            lpk's local address of service NAME of the session namespace
//   ${service:NAME.NS}         ... of service NAME of namespace NS (mapped with --also-namespace)
//   ${service:NAME[.NS].address}  the same, spelled out
//   ${service:NAME[.NS]:PORT}  ADDR:PORT (lpk listens on the service's own port numbers)
//   ${files:/CONTAINER/PATH}   where the container's file is on this machine (under
//                              $LPK_FILES_ROOT)
//   $${                        a literal "${"
//
// Pure; a malformed token is a Problem naming it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/tunnel/error.hpp"

namespace lpk::proxy {

/// What the tokens are filled in from.
struct EnvTokenLookup {
  /// The local address of service `name` of namespace `ns` ("" for the session namespace), or
  /// nothing when lpk maps no such service.
  std::function<std::optional<std::string>(const std::string& name, const std::string& ns)>
      service_address;
  std::filesystem::path files_root;  ///< $LPK_FILES_ROOT
};

/// `value` with every token filled in; a Problem for a malformed token or a service lpk does
/// not map.
tunnel::Result<std::string> expand_env_tokens(std::string_view value,
                                              const EnvTokenLookup& lookup);

/// Checks the tokens' syntax only (every service is taken to exist): for lpk.yaml's validation.
tunnel::Result<void> check_env_tokens(std::string_view value);

/// Sets each override in `into` with its tokens filled in, in order (the last of a name wins). A
/// token that cannot be filled in (a service lpk does not map) leaves its variable as it was,
/// rather than handing the command an address that goes nowhere; returns one line for each.
std::vector<std::string> lay_env_overrides(
    const std::vector<std::pair<std::string, std::string>>& overrides,
    const EnvTokenLookup& lookup, std::map<std::string, std::string>& into);

}  // namespace lpk::proxy
