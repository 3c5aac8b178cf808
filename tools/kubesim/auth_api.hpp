#pragma once
// The authentication and authorization API resources that act rather than store:
// SelfSubjectAccessReview and SelfSubjectRulesReview (what `kubectl auth can-i` creates), and
// the TokenRequest subresource serviceaccounts/NAME/token (`kubectl create token`).

#include <nlohmann/json.hpp>
#include <string>

#include "tools/kubesim/http_server.hpp"
#include "tools/kubesim/routes.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;
class TokenIssuer;

/// The created review (spec echoed, status filled) for the requester. Throws ApiError 400.
json self_subject_access_review(const Store& store, const std::string& body, const Identity& who);
json self_subject_rules_review(const Store& store, const std::string& body, const Identity& who);

/// The TokenRequest answer for POST serviceaccounts/NAME/token. Throws ApiError.
json token_request(const Store& store, TokenIssuer& issuer, const Route& r,
                   const std::string& body);

}  // namespace lpk::kubesim
