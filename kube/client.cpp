#include "kube/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "kube/detail/call.hpp"
#include "kube/detail/status.hpp"

namespace lpk::kube {

namespace {

constexpr int kMaxRetryAfter = 10;            // client-go's maxRetries
constexpr long kRetryAfterCapSeconds = 60;    // a bound of our own on one wait
constexpr long kCallTimeoutSeconds = 300;     // a bound on one non-watch call

}  // namespace

bool detail::wait_for(std::chrono::milliseconds d, std::stop_token stop) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  return !cv.wait_for(lock, stop, d, [] { return false; }) && !stop.stop_requested();
}

namespace {

long retry_after_seconds(const detail::HttpResponse& res) {
  if (res.code != 429 && res.code < 500) return -1;
  std::string v = res.header("Retry-After");
  if (v.empty() || !std::all_of(v.begin(), v.end(), ::isdigit) || v.size() > 9) return -1;
  return std::min(std::stol(v), kRetryAfterCapSeconds);
}

std::string content_type_of(PatchType t) {
  switch (t) {
    case PatchType::merge: return "application/merge-patch+json";
    case PatchType::json: return "application/json-patch+json";
    default: return "application/strategic-merge-patch+json";
  }
}

}  // namespace

std::string detail::list_query(const ListOptions& o, const std::string& rv) {
  std::string q;
  auto add = [&](const char* k, const std::string& v) {
    if (!v.empty()) q += std::string(q.empty() ? "" : "&") + k + "=" + query_escape(v);
  };
  add("labelSelector", o.label_selector);
  add("fieldSelector", o.field_selector);
  add("resourceVersion", rv);
  return q;
}

std::string detail::with_query(const std::string& path, const std::string& q) {
  if (q.empty()) return path;
  return path + (path.find('?') == std::string::npos ? "?" : "&") + q;
}

std::string query_escape(std::string_view v) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string proxy_for(const ClusterConfig& cluster) {
  auto url = detail::parse_server_url(cluster.server, true);
  return url ? detail::proxy_for(cluster, *url) : std::string();
}

std::string resource_path(std::string_view gv, std::string_view ns, std::string_view resource,
                          std::string_view name) {
  std::string p = gv.find('/') == std::string_view::npos ? "/api/" : "/apis/";
  p += gv;
  if (!ns.empty()) p += "/namespaces/" + std::string(ns);
  p += "/" + std::string(resource);
  if (!name.empty()) p += "/" + std::string(name);
  return p;
}

Client::Client(RestConfig config)
    : credentials_(std::move(config)), http_(std::make_unique<detail::Http>(credentials_)) {}

Client::~Client() = default;

std::string Client::who() const {
  const RestConfig& c = config();
  return c.context_name.empty() ? c.source
                                : "context \"" + c.context_name + "\" (" + c.source + ")";
}

detail::HttpResponse detail::exchange(detail::Http& http, Credentials& creds,
                              const detail::HttpRequest& req) {
  bool retried_401 = false;
  for (int attempt = 0;; ++attempt) {
    detail::HttpResponse res;
    try {
      res = http.perform(req);
    } catch (const ConfigError& e) {  // the exec plugin or the token file failed
      throw ApiError(e.what(), 0, "CredentialsUnavailable", nullptr);
    }
    if (res.aborted) return res;
    if (res.code == 401 && !retried_401 && creds.unauthorized()) {
      retried_401 = true;
      continue;
    }
    long wait = retry_after_seconds(res);
    if (wait >= 0 && attempt < kMaxRetryAfter) {
      spdlog::debug("kube: {} {}: HTTP {}, retrying after {} s", req.method, req.target, res.code,
                    wait);
      if (!detail::wait_for(std::chrono::seconds(wait), req.stop)) {
        res.aborted = true;
        return res;
      }
      continue;
    }
    return res;
  }
}

nlohmann::json Client::call(const std::string& method, const std::string& verb,
                            const std::string& path, const std::string& body,
                            const std::string& content_type) {
  detail::HttpRequest req;
  req.method = method;
  req.target = path;
  req.body = body;
  req.content_type = content_type;
  req.timeout_seconds = call_timeout_.count() > 0 ? long(call_timeout_.count()) : kCallTimeoutSeconds;
  detail::HttpResponse res = detail::exchange(*http_, credentials_, req);
  if (res.code == 0) throw ApiError("kube: " + res.error, 0, "ConnectionError", nullptr);
  if (res.code < 200 || res.code > 299)
    throw detail::api_error(int(res.code), res.body, verb, path, who());
  if (!res.error.empty())
    throw ApiError("kube: " + verb + " " + path + ": " + res.error, int(res.code),
                   "ConnectionError", nullptr);
  if (res.body.empty()) return nullptr;
  auto j = nlohmann::json::parse(res.body, nullptr, false);
  if (j.is_discarded())
    throw detail::malformed_body(int(res.code), res.body, verb, path, "a body that is not JSON");
  if (!j.is_object())
    throw detail::malformed_body(int(res.code), res.body, verb, path, "JSON that is not an object");
  return j;
}

nlohmann::json Client::get(const std::string& path) { return call("GET", "get", path); }

nlohmann::json Client::list(const std::string& path, const ListOptions& o) {
  return call("GET", "list", detail::with_query(path, detail::list_query(o, o.resource_version)));
}

nlohmann::json Client::create(const std::string& path, const nlohmann::json& body) {
  return call("POST", "create", path, body.dump(), "application/json");
}

nlohmann::json Client::replace(const std::string& path, const nlohmann::json& body) {
  return call("PUT", "update", path, body.dump(), "application/json");
}

nlohmann::json Client::patch(const std::string& path, const nlohmann::json& body, PatchType t) {
  return call("PATCH", "patch", path, body.dump(), content_type_of(t));
}

void Client::remove(const std::string& path, std::string_view propagation_policy) {
  if (propagation_policy.empty()) {
    call("DELETE", "delete", path);
    return;
  }
  call("DELETE", "delete", path,
       nlohmann::json{{"kind", "DeleteOptions"},
                      {"apiVersion", "v1"},
                      {"propagationPolicy", propagation_policy}}
           .dump(),
       "application/json");
}

}  // namespace lpk::kube
