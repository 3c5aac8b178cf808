// JSON form of a TableSpec, for lpk-dns and tests. Field names follow the Kubernetes objects
// they come from (externalName, hostname, protocol).
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "dns/name_table.hpp"

namespace lpk::dns {
namespace {

using nlohmann::json;

boost::asio::ip::address parse_address(const json& j, const std::string& where) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(j.get<std::string>(), ec);
  if (ec) throw std::invalid_argument(where + ": not an IP address: " + j.dump());
  return a;
}

Service parse_service(const json& j) {
  Service s;
  s.name = j.at("name").get<std::string>();
  s.ns = j.value("namespace", "default");
  const std::string where = "service " + s.name + "." + s.ns;
  if (j.contains("address")) s.address = parse_address(j["address"], where);
  s.headless = j.value("headless", false);
  s.external_name = j.value("externalName", "");
  for (const auto& p : j.value("ports", json::array())) {
    s.ports.push_back(ServicePort{p.value("name", ""), p.at("port").get<std::uint16_t>(),
                                  p.value("protocol", "tcp")});
  }
  for (const auto& e : j.value("endpoints", json::array())) {
    s.endpoints.push_back(Endpoint{parse_address(e.at("address"), where), e.value("hostname", ""),
                                   e.value("ready", true)});
  }
  return s;
}

}  // namespace

TableSpec parse_table_json(std::string_view text) {
  try {
    const json j = json::parse(text);
    TableSpec spec;
    spec.zone = j.value("zone", spec.zone);
    spec.session_namespace = j.value("namespace", spec.session_namespace);
    spec.ttl = j.value("ttl", spec.ttl);
    spec.namespaces = j.value("namespaces", std::vector<std::string>{});
    for (const auto& s : j.value("services", json::array()))
      spec.services.push_back(parse_service(s));
    return spec;
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("name table JSON: ") + e.what());
  }
}

}  // namespace lpk::dns
