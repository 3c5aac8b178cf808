#include "tools/kubesim/eviction.hpp"

#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

namespace {

// EvictionREST.Create compares the Eviction's name with the URL's.
void check_body(const Route& r, const std::string& body) {
  json e = json::parse(body, nullptr, false);
  if (e.is_discarded() || !e.is_object()) {
    throw ApiError(400, "BadRequest", "the body of the request was not an Eviction");
  }
  std::string kind = e.value("kind", "");
  if (!kind.empty() && kind != "Eviction") {
    throw ApiError(400, "BadRequest", "the body of the request was a " + kind + ", not an Eviction");
  }
  std::string name = e.value("metadata", json::object()).value("name", "");
  if (name != r.name) {
    throw ApiError(400, "BadRequest", "name in URL does not match name in Eviction object");
  }
}

}  // namespace

json serve_eviction(Rest& rest, const Route& r, const std::string& method,
                    const std::string& body) {
  if (method != "POST") {
    throw ApiError(405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource");
  }
  check_body(r, body);
  rest.get(r);  // 404 for a pod that does not exist
  Route pod{r.type, r.ns, r.name, ""};
  rest.remove(pod, false);
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", json::object()},
          {"status", "Success"},
          {"code", 201}};
}

}  // namespace lpk::kubesim
