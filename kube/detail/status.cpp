#include "kube/detail/status.hpp"

#include <vector>

namespace lpk::kube::detail {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  auto q = path.find('?');
  if (q != std::string_view::npos) path = path.substr(0, q);
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    auto slash = path.find('/');
    auto part = path.substr(0, slash);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

std::string printable(std::string_view s, size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : (uint8_t(c) < 0x20 ? '?' : c);
  if (s.size() > max) out += "...";
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string str_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string where(const ApiPath& p) {
  return p.ns.empty() ? std::string(" (cluster-wide)") : " in namespace " + p.ns;
}

std::string reason_phrase(int code) {
  switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "Unknown";
  }
}

}  // namespace

std::string ApiPath::resource_label() const {
  std::string r = resource.empty() ? std::string("resource") : resource;
  if (!subresource.empty()) r += "/" + subresource;
  if (!group.empty()) r += "." + group;
  return r;
}

ApiPath parse_api_path(std::string_view path) {
  auto parts = split_path(path);
  ApiPath p;
  size_t i = 0;
  if (i < parts.size() && parts[i] == "api") {
    ++i;
  } else if (i < parts.size() && parts[i] == "apis") {
    ++i;
    if (i < parts.size()) p.group = std::string(parts[i++]);
  } else {
    return p;
  }
  if (i < parts.size()) p.version = std::string(parts[i++]);
  if (i + 1 < parts.size() && parts[i] == "namespaces" && i + 2 < parts.size()) {
    p.ns = std::string(parts[i + 1]);
    i += 2;
  }
  if (i < parts.size()) p.resource = std::string(parts[i++]);
  if (i < parts.size()) p.name = std::string(parts[i++]);
  if (i < parts.size()) p.subresource = std::string(parts[i++]);
  // /api/v1/namespaces/demo is the namespace object itself.
  if (p.resource.empty() && !p.ns.empty()) {
    p.resource = "namespaces";
    p.name = p.ns;
    p.ns.clear();
  }
  return p;
}

ApiError api_error(int code, std::string_view body, std::string_view verb, std::string_view path,
                   std::string_view who) {
  ApiPath p = parse_api_path(path);
  auto j = nlohmann::json::parse(body, nullptr, false);
  nlohmann::json status;
  std::string message, reason;
  if (!j.is_discarded() && j.is_object() && str_field(j, "kind") == "Status") {
    status = j;
    message = str_field(j, "message");
    reason = str_field(j, "reason");
  }
  if (reason.empty()) reason = reason_phrase(code);
  if (message.empty())
    message = body.empty() ? "HTTP " + std::to_string(code) + " with an empty body"
                           : "HTTP " + std::to_string(code) + ": " + printable(body);
  std::string what;
  std::string target = p.resource_label() + (p.name.empty() ? "" : " \"" + p.name + "\"");
  switch (code) {
    case 401:
      what = "the API server rejected the credentials of " + std::string(who) +
             " (401 Unauthorized: " + message + "); renew the token or certificate, or log in again";
      break;
    case 403:
      what = "not allowed to " + std::string(verb) + " " + p.resource_label() + where(p) + ": " +
             message;
      break;
    case 404:
      what = "not found: " + target + where(p) + " (" + message + ")";
      break;
    default:
      what = "cannot " + std::string(verb) + " " + target + where(p) + ": " + message + " (" +
             std::to_string(code) + " " + reason + ")";
  }
  return ApiError("kube: " + what, code, reason, status);
}

ApiError malformed_body(int code, std::string_view body, std::string_view verb,
                        std::string_view path, std::string_view why) {
  ApiPath p = parse_api_path(path);
  return ApiError("kube: " + std::string(verb) + " " + p.resource_label() + where(p) +
                      ": the server answered HTTP " + std::to_string(code) + " with " +
                      std::string(why) + " (body starts '" + printable(body, 80) + "')",
                  code, "MalformedResponse", nullptr);
}

std::optional<WatchLine> parse_watch_line(std::string_view line, std::string& error) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = "a watch event that is not a JSON object ('" + printable(line, 80) + "')";
    return std::nullopt;
  }
  auto type = j.find("type");
  auto object = j.find("object");
  if (type == j.end() || !type->is_string() || object == j.end() || !object->is_object()) {
    error = "a watch event without a type or an object";
    return std::nullopt;
  }
  WatchLine w{type->get<std::string>(), std::move(*object)};
  if (w.type != "ADDED" && w.type != "MODIFIED" && w.type != "DELETED" && w.type != "BOOKMARK" &&
      w.type != "ERROR") {
    error = "a watch event of unknown type '" + printable(w.type, 40) + "'";
    return std::nullopt;
  }
  return w;
}

}  // namespace lpk::kube::detail
