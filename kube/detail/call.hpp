#pragma once
// Pieces shared by client.cpp and watch.cpp.
#include <chrono>
#include <stop_token>
#include <string>

#include "kube/client.hpp"
#include "kube/detail/http.hpp"

namespace lpk::kube::detail {

/// One request with client-go's retries: once more after a 401 when the credentials can change
/// (exec plugin, token file), and after Retry-After on 429/5xx, at most 10 times.
HttpResponse exchange(Http& http, Credentials& creds, const HttpRequest& req);

/// Sleeps unless stop is requested first; returns false when stopped.
bool wait_for(std::chrono::milliseconds d, std::stop_token stop);

/// labelSelector, fieldSelector and resourceVersion as a query string ("" if none).
std::string list_query(const ListOptions& o, const std::string& rv);
std::string with_query(const std::string& path, const std::string& query);

}  // namespace lpk::kube::detail
