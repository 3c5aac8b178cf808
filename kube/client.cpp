#include "kube/client.hpp"

namespace lpk::kube {
namespace detail {
class Http {};
}  // namespace detail
Client::Client(RestConfig config) : credentials_(std::move(config)) {}
Client::~Client() = default;
static ApiError not_built() { return ApiError("kube: client not built yet", 0, "", nullptr); }
nlohmann::json Client::get(const std::string&) { throw not_built(); }
nlohmann::json Client::list(const std::string&, const ListOptions&) { throw not_built(); }
nlohmann::json Client::create(const std::string&, const nlohmann::json&) { throw not_built(); }
nlohmann::json Client::replace(const std::string&, const nlohmann::json&) { throw not_built(); }
nlohmann::json Client::patch(const std::string&, const nlohmann::json&, PatchType) {
  throw not_built();
}
void Client::remove(const std::string&) { throw not_built(); }
void Client::watch(const std::string&, const ListOptions&, std::function<void(const nlohmann::json&)>,
                   std::function<void(const WatchEvent&)>, std::stop_token) {
  throw not_built();
}
std::string resource_path(std::string_view, std::string_view, std::string_view, std::string_view) {
  return {};
}
}  // namespace lpk::kube
