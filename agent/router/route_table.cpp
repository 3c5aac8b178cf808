#include "agent/router/route_table.hpp"

#include <algorithm>

#include "proxy/tunnel/listen.hpp"

namespace lpk::router {

namespace {

using boost::asio::ip::tcp;

tcp::endpoint with_port(Backend backend, std::uint16_t port) {
  if (backend.port() == 0) backend.port(port);
  return backend;
}

nlohmann::json texts(const std::vector<Backend>& backends) {
  auto out = nlohmann::json::array();
  for (const auto& b : backends) out.push_back(backend_text(b));
  return out;
}

}  // namespace

std::string backend_text(const Backend& backend) {
  return backend.port() == 0 ? backend.address().to_string() : tunnel::endpoint_text(backend);
}

void RouteTable::update(RouteSet set) {
  known_ = true;
  routes_.clear();
  header_names_.clear();
  for (auto& spec : set.routes) {
    auto same = std::find_if(routes_.begin(), routes_.end(), [&](const Route& r) {
      return r.spec.header == spec.header && r.spec.value == spec.value;
    });
    if (same != routes_.end()) {
      same->spec.pods.insert(same->spec.pods.end(), spec.pods.begin(), spec.pods.end());
      continue;
    }
    if (std::find(header_names_.begin(), header_names_.end(), spec.header) == header_names_.end()) {
      header_names_.push_back(spec.header);
    }
    auto* counter = &counts_[{spec.header, spec.value}];
    routes_.push_back(Route{std::move(spec), counter});
  }
  originals_ = std::move(set.originals);
}

RouteTable::Pick RouteTable::pick_route(std::string_view header, std::string_view value,
                                        std::uint16_t port) {
  for (auto& r : routes_) {
    if (r.spec.header != header || r.spec.value != value || r.spec.pods.empty()) continue;
    ++*r.requests;
    auto& pod = r.spec.pods[r.next++ % r.spec.pods.size()];
    return {with_port(pod, port), &r.spec};
  }
  return {};
}

RouteTable::Pick RouteTable::pick_original(std::uint16_t port) {
  ++original_requests_;
  return {next_original(port), nullptr};
}

std::optional<tcp::endpoint> RouteTable::next_original(std::uint16_t port) {
  if (originals_.empty()) return std::nullopt;
  return with_port(originals_[next_original_++ % originals_.size()], port);
}

nlohmann::json RouteTable::describe(const std::string& service) const {
  auto routes = nlohmann::json::array();
  for (const auto& r : routes_) {
    routes.push_back({{"header", r.spec.header},
                      {"value", r.spec.value},
                      {"session", r.spec.session},
                      {"pods", texts(r.spec.pods)},
                      {"requests", *r.requests}});
  }
  return {{"service", service},
          {"routes", std::move(routes)},
          {"original", {{"pods", texts(originals_)}, {"requests", original_requests_}}}};
}

}  // namespace lpk::router
