#pragma once
// The legacy oidc auth-provider's refresh, as client-go's plugin/pkg/client/auth/oidc does it:
// the id-token's JWT `exp` (10 s early), discovery at <issuer>/.well-known/openid-configuration,
// a refresh_token grant to its token_endpoint with the client id and secret, and the new tokens
// written back into the kubeconfig file the user came from.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kube/config.hpp"

namespace lpk::kube::detail {

/// The `exp` claim (seconds since the epoch) of a JWT; nullopt when it is not a JWT or has none.
std::optional<std::int64_t> jwt_expiry(std::string_view jwt);

/// client-go's idTokenExpired: true when `exp` is less than 10 s away; a token whose expiry
/// cannot be read counts as valid (the server decides).
bool id_token_expired(std::string_view jwt, std::chrono::system_clock::time_point now);

struct OidcTokens {
  std::string id_token;
  std::string refresh_token;  ///< the new one, or the old one when the issuer sent none
};

/// Discovery + refresh_token grant over libcurl. Blocking: never call on an io_context thread.
/// Throws ConfigError with one line (what failed, and to log in again).
OidcTokens refresh_oidc(const OidcConfig& config);

/// Rewrites users[name=user].user.auth-provider.config's id-token and refresh-token in `file`
/// (written to a temporary file in the same folder and renamed over it, mode kept). The rest of
/// the file's content is kept; yaml-cpp does not keep comments or formatting. Throws ConfigError.
void persist_oidc_tokens(const std::string& file, const std::string& user,
                         const OidcTokens& tokens);

}  // namespace lpk::kube::detail
