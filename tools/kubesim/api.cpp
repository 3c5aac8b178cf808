#include "tools/kubesim/api.hpp"

#include <spdlog/spdlog.h>

#include <set>

#include "tools/kubesim/auth_api.hpp"
#include "tools/kubesim/discovery.hpp"
#include "tools/kubesim/eviction.hpp"
#include "tools/kubesim/openapi.hpp"
#include "tools/kubesim/protobuf_body.hpp"
#include "tools/kubesim/rbac.hpp"
#include "tools/kubesim/scale.hpp"
#include "tools/kubesim/status.hpp"
#include "tools/kubesim/tables.hpp"

namespace lpk::kubesim {

using asio::awaitable;

bool wants_table(const Request& req) {
  auto it = req.find(http::field::accept);
  return it != req.end() && it->value().find("as=Table") != std::string_view::npos;
}

Api::Api(Rest& rest, std::string server_addr, WatchSettings watch)
    : rest_(rest), server_addr_(std::move(server_addr)), watch_(watch) {}

namespace {

constexpr std::string_view kFaultsPath = "/kubesim/faults/";

const std::string kNotFoundBody =
    ApiError(404, "NotFound", "the server could not find the requested resource").status().dump();

http::status status_of(int code) { return static_cast<http::status>(code); }

std::vector<std::pair<std::string, std::string>> warning_headers(
    const std::vector<std::string>& warnings) {
  std::vector<std::pair<std::string, std::string>> h;
  for (const auto& w : warnings) {
    json quoted = w;
    h.emplace_back("Warning", "299 - " + quoted.dump());
  }
  return h;
}

}  // namespace

json Api::respond_object(const Request& req, const Route& r, const json& obj,
                         const std::map<std::string, std::string>& q) const {
  if (!wants_table(req)) return obj;
  auto io = q.count("includeObject") ? q.at("includeObject") : "Metadata";
  return make_table(*r.type, {obj}, obj["metadata"].value("resourceVersion", ""), io);
}

awaitable<bool> Api::handle(Request& req, TlsStream& stream, const Identity& who) {
  std::string target(req.target());
  size_t qm = target.find('?');
  std::string path = target.substr(0, qm);
  auto q = parse_query(qm == std::string::npos ? "" : std::string_view(target).substr(qm + 1));
  bool keep = req.keep_alive();
  spdlog::debug("kubesim: {} {} by {}", std::string(req.method_string()), target, who.user);
  auto attrs = request_attributes(std::string(req.method_string()), path, q, who.user, who.groups);
  if (!authorize(rest_.store(), attrs).allowed) {
    co_await write_json(stream, req, http::status::forbidden,
                        forbidden_error(attrs).status().dump(), keep);
    co_return keep;
  }
  if (auto doc = discovery_document(path, server_addr_)) {
    co_await write_json(stream, req, http::status::ok, doc->dump(), keep);
    co_return keep;
  }
  if (auto doc = openapi_document(path)) {
    co_await write_json(stream, req, http::status::ok, doc->dump(), keep);
    co_return keep;
  }
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    co_await write_json(stream, req, http::status::ok, "ok", keep);
    co_return keep;
  }
  if (path.starts_with(kFaultsPath) && req.method() == http::verb::post && faults_) {
    http::status code = http::status::not_found;
    std::string body = kNotFoundBody;
    try {
      if (auto done = faults_(path.substr(std::string_view(kFaultsPath).size()), q, stream)) {
        code = http::status::ok;
        body = done->dump();
      }
    } catch (const ApiError& e) {
      code = status_of(e.code());
      body = e.status().dump();
    }
    co_await write_json(stream, req, code, body, keep);
    co_return keep;
  }
  auto route = parse_route(path);
  if (!route) {
    co_await write_json(stream, req, http::status::not_found, kNotFoundBody, keep);
    co_return keep;
  }
  std::string error_body;
  int code = 0;
  try {
    co_return co_await dispatch(req, stream, *route, q, who);
  } catch (const ApiError& e) {
    code = e.code();
    error_body = e.status().dump();
  } catch (const std::exception& e) {
    code = 500;
    error_body = ApiError(500, "InternalError", std::string("Internal error occurred: ") + e.what())
                     .status()
                     .dump();
  }
  co_await write_json(stream, req, status_of(code), error_body, keep);
  co_return keep;
}

std::optional<json> Api::act(const Request& req, const Route& r, const Identity& who) {
  const std::string& plural = r.type->plural;
  bool review = plural == "selfsubjectaccessreviews" || plural == "selfsubjectrulesreviews";
  bool token = plural == "serviceaccounts" && r.sub == "token";
  if (!review && !token) return std::nullopt;
  // kubectl's typed clients send these as protobuf; the handlers read JSON.
  std::string body = req.body();
  if (std::string_view(req[http::field::content_type]).starts_with(kProtobufContentType)) {
    auto decoded = decode_protobuf_body(body);
    if (decoded) body = decoded->dump();
  }
  if (review && r.name.empty() && req.method() == http::verb::post) {
    return plural == "selfsubjectaccessreviews"
               ? self_subject_access_review(rest_.store(), body, who)
               : self_subject_rules_review(rest_.store(), body, who);
  }
  if (review) {
    throw ApiError(405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource");
  }
  if (plural == "serviceaccounts" && r.sub == "token" && req.method() == http::verb::post) {
    if (!tokens_)
      throw ApiError(404, "NotFound", "the server could not find the requested resource");
    return token_request(rest_.store(), *tokens_, r, body);
  }
  return std::nullopt;
}

namespace {

// strconv.ParseBool, as the apiserver parses query booleans (Python sends "True").
bool parse_bool(const std::string& v) {
  static const std::set<std::string> kTrue = {"1", "t", "T", "true", "TRUE", "True"};
  return kTrue.count(v) > 0;
}

// ?fieldManager=, else the program part of the User-Agent (fieldmanager's
// prefixFromUserAgent: "kubectl/v1.32 (linux/amd64)" is "kubectl"), at most 128 bytes.
std::string field_manager(const std::string& param, std::string_view user_agent) {
  if (!param.empty()) return param;
  return std::string(user_agent.substr(0, std::min(user_agent.find('/'), size_t{128})));
}

}  // namespace

awaitable<bool> Api::dispatch(Request& req, TlsStream& stream, const Route& r,
                              const std::map<std::string, std::string>& q, const Identity& who) {
  bool keep = req.keep_alive();
  if (auto out = act(req, r, who)) {
    co_await write_json(stream, req, http::status::created, out->dump(), keep);
    co_return keep;
  }
  if (r.sub == "log" && r.type->plural == "pods" && req.method() == http::verb::get && logs_) {
    co_return co_await logs_(req, stream, r, q);
  }
  auto param = [&](const char* k) { return q.count(k) ? q.at(k) : std::string(); };
  if (r.sub == "portforward" && r.type->plural == "pods") {
    if (!portforward_) throw ApiError(404, "NotFound", "port-forward is not available");
    rest_.get(r);  // 404 for a pod that does not exist
    co_return co_await portforward_(req, stream, r, q);
  }
  if (r.sub == "eviction" && r.type->plural == "pods" && !r.name.empty()) {
    json status = serve_eviction(rest_, r, std::string(req.method_string()), req.body());
    co_await write_json(stream, req, http::status::created, status.dump(), keep);
    co_return keep;
  }
  if (r.sub == "scale" && has_scale(*r.type)) {
    json out = serve_scale(rest_, r, std::string(req.method_string()),
                           std::string(req[http::field::content_type]), req.body());
    co_await write_json(stream, req, http::status::ok, out.dump(), keep);
    co_return keep;
  }
  if (!r.sub.empty() && !(r.sub == "status" && r.type->has_status)) {
    co_await write_json(stream, req, http::status::not_found, kNotFoundBody, keep);
    co_return keep;
  }
  if (req.method() == http::verb::post || req.method() == http::verb::put) {
    std::string ct(req[http::field::content_type]);
    // kubectl's imperative `create` sends protobuf (protobuf_body.hpp): a body decoded as the
    // route's kind is read as the JSON kubectl would have sent.
    if (ct.starts_with(kProtobufContentType)) {
      auto decoded = decode_protobuf_body(req.body());
      if (decoded && decoded->value("kind", "") == r.type->kind) {
        req.body() = decoded->dump();
        ct = "application/json";
      }
    }
    if (!ct.empty() && ct.rfind("application/json", 0) != 0 && ct.rfind("*/*", 0) != 0) {
      throw ApiError(415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json, application/yaml");
    }
  }
  std::vector<std::string> warnings;
  bool strict = param("fieldValidation") == "Strict";
  std::string manager = field_manager(param("fieldManager"), req[http::field::user_agent]);
  json out;
  http::status code = http::status::ok;
  switch (req.method()) {
    case http::verb::get:
      if (r.name.empty()) {
        if (parse_bool(param("watch"))) {
          co_return co_await serve_watch(req, stream, r, q);
        }
        auto res = rest_.list(*r.type, r.ns, param("labelSelector"), param("fieldSelector"));
        if (wants_table(req)) {
          std::string io = q.count("includeObject") ? q.at("includeObject") : "Metadata";
          out = make_table(*r.type, res.items, res.resource_version, io);
        } else {
          out = {{"kind", r.type->list_kind()},
                 {"apiVersion", r.type->api_version()},
                 {"metadata", {{"resourceVersion", res.resource_version}}},
                 {"items", res.items}};
        }
      } else {
        out = respond_object(req, r, rest_.get(r), q);
      }
      break;
    case http::verb::post:
      out = rest_.create(r, req.body(), strict, warnings, manager);
      code = http::status::created;
      break;
    case http::verb::put:
      out = rest_.update(r, req.body(), strict, warnings, manager);
      break;
    case http::verb::patch: {
      // An apply must name its manager; other writes default to the User-Agent's.
      std::string ct(req[http::field::content_type]);
      bool apply = ct.rfind("application/apply-patch+yaml", 0) == 0;
      out = rest_.patch(
          r, ct, req.body(),
          {apply ? param("fieldManager") : manager, parse_bool(param("force")), strict}, warnings);
    } break;
    case http::verb::delete_: {
      bool orphan = param("propagationPolicy") == "Orphan";
      json body = json::parse(req.body(), nullptr, false);
      if (body.is_object() && body.value("propagationPolicy", "") == "Orphan") orphan = true;
      out = rest_.remove(r, orphan);
      break;
    }
    default:
      throw ApiError(405, "MethodNotAllowed",
                     "the server does not allow this method on the requested resource");
  }
  co_await write_json(stream, req, code, out.dump(), keep, warning_headers(warnings));
  co_return keep;
}

}  // namespace lpk::kubesim
