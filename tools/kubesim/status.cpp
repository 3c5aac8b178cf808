#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

ApiError::ApiError(int code, std::string reason, std::string message, json details)
    : std::runtime_error(std::move(message)),
      code_(code),
      reason_(std::move(reason)),
      details_(std::move(details)) {}

json ApiError::status() const {
  json s = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
            {"status", "Failure"}, {"message", what()},  {"reason", reason_},
            {"code", code_}};
  if (!details_.empty()) s["details"] = details_;
  return s;
}

namespace {
json details_for(const std::string& resource, const std::string& name, const std::string& group) {
  json d = {{"name", name}, {"kind", resource}};
  if (!group.empty()) d["group"] = group;
  return d;
}
std::string qualified(const std::string& resource, const std::string& group) {
  return group.empty() ? resource : resource + "." + group;
}
}  // namespace

ApiError not_found(const std::string& resource, const std::string& name, const std::string& group) {
  return ApiError(404, "NotFound", qualified(resource, group) + " \"" + name + "\" not found",
                  details_for(resource, name, group));
}

ApiError already_exists(const std::string& resource, const std::string& name,
                        const std::string& group) {
  return ApiError(409, "AlreadyExists",
                  qualified(resource, group) + " \"" + name + "\" already exists",
                  details_for(resource, name, group));
}

ApiError conflict(const std::string& resource, const std::string& name, const std::string& why,
                  const std::string& group) {
  return ApiError(409, "Conflict",
                  "Operation cannot be fulfilled on " + qualified(resource, group) + " \"" + name +
                      "\": " + why,
                  details_for(resource, name, group));
}

ApiError bad_request(const std::string& message) { return ApiError(400, "BadRequest", message); }

ApiError invalid(const std::string& kind, const std::string& name, const std::string& field,
                 const std::string& cause_reason, const std::string& message) {
  json details = {
      {"name", name},
      {"kind", kind},
      {"causes",
       json::array({{{"reason", cause_reason}, {"message", message}, {"field", field}}})}};
  return ApiError(422, "Invalid", kind + " \"" + name + "\" is invalid: " + field + ": " + message,
                  details);
}

ApiError gone(const std::string& message) { return ApiError(410, "Expired", message); }

ApiError forbidden(const std::string& resource, const std::string& name, const std::string& why,
                   const std::string& group) {
  std::string what = qualified(resource, group) + (name.empty() ? "" : " \"" + name + "\"");
  return ApiError(403, "Forbidden", what + " is forbidden: " + why,
                  details_for(resource, name, group));
}

json success_status(const std::string& kind, const std::string& name) {
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", json::object()},
          {"status", "Success"},
          {"details", {{"name", name}, {"kind", kind}}}};
}

}  // namespace lpk::kubesim
