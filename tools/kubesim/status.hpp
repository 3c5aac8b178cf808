#pragma once
// Kubernetes Status objects and the exception that carries one out of a request handler.

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace lpk::kubesim {

using json = nlohmann::json;

/// A failed API call: code, reason and message as a real apiserver reports them.
/// Thrown inside the kubesim request path only; the handler turns it into a Status body.
class ApiError : public std::runtime_error {
 public:
  ApiError(int code, std::string reason, std::string message, json details = json::object());
  int code() const { return code_; }
  const std::string& reason() const { return reason_; }
  json status() const;

 private:
  int code_;
  std::string reason_;
  json details_;
};

ApiError not_found(const std::string& resource, const std::string& name,
                   const std::string& group = "");
ApiError already_exists(const std::string& resource, const std::string& name,
                        const std::string& group = "");
ApiError conflict(const std::string& resource, const std::string& name, const std::string& why,
                  const std::string& group = "");
ApiError bad_request(const std::string& message);
/// 422 Invalid with one cause (field path and message), like field.ErrorList in apimachinery.
ApiError invalid(const std::string& kind, const std::string& name, const std::string& field,
                 const std::string& cause_reason, const std::string& message);
ApiError gone(const std::string& message);
/// 403 Forbidden: `<resource>[.group] ["name"] is forbidden: <why>` (apierrors.NewForbidden).
ApiError forbidden(const std::string& resource, const std::string& name, const std::string& why,
                   const std::string& group = "");

/// A success Status (used for deletes of collections and namespaces).
json success_status(const std::string& kind, const std::string& name);

}  // namespace lpk::kubesim
