#include "kube/envvars.hpp"

#include <algorithm>

#include "kube/objects.hpp"
#include "kube/text.hpp"

namespace lpk::kube {

std::vector<ServicePort> service_ports(const nlohmann::json& service) {
  std::vector<ServicePort> ports;
  for (const auto& p : field(field(service, "spec"), "ports")) {
    const auto& number = field(p, "port");
    auto protocol = text_of(field(p, "protocol"));
    ports.push_back({text_of(field(p, "name")),
                     static_cast<std::uint16_t>(number.is_number_integer() ? number.get<int>() : 0),
                     protocol.empty() ? "TCP" : protocol});
  }
  return ports;
}

std::string env_variable_name(std::string_view name) {
  std::string out = text::ascii_upper(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

std::vector<std::pair<std::string, std::string>> service_link_variables(
    std::string_view name, std::string_view ip, const std::vector<ServicePort>& ports) {
  std::vector<std::pair<std::string, std::string>> vars;
  if (ports.empty()) return vars;
  const std::string prefix = env_variable_name(name);
  const std::string address(ip);
  const std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
  vars.emplace_back(prefix + "_SERVICE_HOST", address);
  const std::string port_name = prefix + "_SERVICE_PORT";
  vars.emplace_back(port_name, std::to_string(ports.front().port));
  for (const auto& p : ports) {
    if (!p.name.empty()) {
      vars.emplace_back(port_name + "_" + env_variable_name(p.name), std::to_string(p.port));
    }
  }
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const auto& p = ports[i];
    const std::string protocol = p.protocol.empty() ? "TCP" : p.protocol;
    const std::string url =
        text::ascii_lower(protocol) + "://" + host + ":" + std::to_string(p.port);
    if (i == 0) vars.emplace_back(prefix + "_PORT", url);  // Docker's special first port
    const std::string port_prefix =
        prefix + "_PORT_" + std::to_string(p.port) + "_" + text::ascii_upper(protocol);
    vars.emplace_back(port_prefix, url);
    vars.emplace_back(port_prefix + "_PROTO", text::ascii_lower(protocol));
    vars.emplace_back(port_prefix + "_PORT", std::to_string(p.port));
    vars.emplace_back(port_prefix + "_ADDR", address);
  }
  return vars;
}

}  // namespace lpk::kube
