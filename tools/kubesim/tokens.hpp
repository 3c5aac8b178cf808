#pragma once
// Service-account tokens as the apiserver issues them (k/k pkg/serviceaccount/claims.go and
// jwt.go): ES256-signed JWTs whose subject is system:serviceaccount:<ns>:<name>, with the
// private "kubernetes.io" claim naming the account (and the pod a projected token is bound
// to). kubesim's authenticator accepts a token only while its account (and pod) still exist
// with the same uid, and only when its audience includes the API's own.

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

inline constexpr const char* kApiAudience = "https://kubernetes.default.svc.cluster.local";
inline constexpr const char* kServiceAccountPrefix = "system:serviceaccount:";

struct TokenSubject {
  std::string ns, name, uid;          // the service account
  std::string pod_name, pod_uid;      // set for a token bound to a pod
  std::vector<std::string> audiences;  // empty: the API audience
  int64_t expiration_seconds = 3600;
};

struct TokenUser {
  std::string user;  // system:serviceaccount:ns:name
  std::vector<std::string> groups;
};

class TokenIssuer {
 public:
  /// Makes a fresh P-256 signing key. Throws std::runtime_error on an OpenSSL failure.
  TokenIssuer();
  ~TokenIssuer();
  TokenIssuer(const TokenIssuer&) = delete;
  TokenIssuer& operator=(const TokenIssuer&) = delete;

  /// A signed token; expires is set to its expiry. A pod-bound token asked for 3607 s lives a
  /// year with a warnafter claim at 3607 s, as the apiserver's extended expiration does.
  std::string issue(const TokenSubject& s, std::chrono::system_clock::time_point* expires = nullptr);
  /// The user of a token the API accepts: signature, time, issuer and audience valid, and
  /// its account (and bound pod) still in the store with the same uid. nullopt otherwise.
  std::optional<TokenUser> authenticate(const std::string& token, const Store& store) const;
  /// The claims of a well-signed token (no other check), nullopt when not one of ours.
  std::optional<json> claims(const std::string& token) const;

 private:
  struct Key;
  std::unique_ptr<Key> key_;
  std::string kid_;
};

/// RFC 4648 section 5 base64url without padding, as JWTs use it.
std::string base64url_encode(const std::string& in);
std::optional<std::string> base64url_decode(const std::string& in);

/// The groups of a service account user: system:serviceaccounts, system:serviceaccounts:<ns>,
/// system:authenticated.
std::vector<std::string> service_account_groups(const std::string& ns);

}  // namespace lpk::kubesim
