#include "agent/router/route_source.hpp"

#include "proxy/tunnel/route_labels.hpp"
#include "kube/objects.hpp"
#include "kube/text.hpp"

namespace lpk::router {

using namespace tunnel;  // route_labels.hpp: the names both ends share

namespace {

using boost::asio::ip::tcp;
using kube::field;
using kube::text_of;

/// The pod's IP when it is ready and has one.
std::optional<boost::asio::ip::address> live_ip(const nlohmann::json& pod) {
  if (!kube::pod_ready(pod)) return std::nullopt;
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(text_of(field(field(pod, "status"), "podIP")), ec);
  if (ec) return std::nullopt;
  return ip;
}

std::string meta(const nlohmann::json& pod, const char* map, std::string_view key) {
  return text_of(field(field(field(pod, "metadata"), map), std::string(key).c_str()));
}

std::optional<tcp::endpoint> parse_target(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  auto host = text.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  auto port_text = text.substr(colon + 1);
  if (ec || port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  auto port = std::stoul(port_text);
  if (port == 0 || port > 65535) return std::nullopt;
  return tcp::endpoint(address, std::uint16_t(port));
}

bool parse_file_route(const nlohmann::json& r, RouteSet& out, std::string& error) {
  auto header = text::ascii_lower(text_of(field(r, "header")));
  auto value = text_of(field(r, "value"));
  auto target = parse_target(text_of(field(r, "target")));
  if (header.empty() || value.empty() || !target) {
    error = "each route wants \"header\", \"value\" and \"target\" (IP:PORT): " + r.dump();
    return false;
  }
  out.routes.push_back({header, value, text_of(field(r, "session")), {*target}});
  return true;
}

}  // namespace

RouteSet route_set_from_pods(const PodMap& session_pods, const PodMap& original_pods) {
  RouteSet out;
  for (const auto& [name, pod] : session_pods) {
    auto header = text::ascii_lower(meta(pod, "annotations", kRouteHeaderAnnotation));
    auto value = meta(pod, "annotations", kRouteValueAnnotation);
    if (header.empty() || value.empty()) continue;
    RouteSpec spec{header, value, meta(pod, "labels", kSessionLabel), {}};
    if (auto ip = live_ip(pod)) spec.pods.emplace_back(*ip, 0);
    out.routes.push_back(std::move(spec));
  }
  for (const auto& [name, pod] : original_pods) {
    if (!meta(pod, "labels", kRouteForLabel).empty() ||
        !meta(pod, "labels", kRouterLabel).empty()) {
      continue;
    }
    if (auto ip = live_ip(pod)) out.originals.emplace_back(*ip, 0);
  }
  return out;
}

std::optional<RouteSet> parse_routes_file(std::string_view text, std::string& error) {
  auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  RouteSet out;
  const auto& routes = field(doc, "routes");
  const auto& originals = field(doc, "originals");
  if (!(routes.is_array() || routes.is_null()) || !(originals.is_array() || originals.is_null())) {
    error = "\"routes\" and \"originals\" must be arrays";
    return std::nullopt;
  }
  for (const auto& r : routes) {
    if (!parse_file_route(r, out, error)) return std::nullopt;
  }
  for (const auto& o : originals) {
    auto target = parse_target(text_of(o));
    if (!target) {
      error = "each original wants IP:PORT, got " + o.dump();
      return std::nullopt;
    }
    out.originals.push_back(*target);
  }
  return out;
}

}  // namespace lpk::router
