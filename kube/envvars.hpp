#pragma once
// The service link variables the kubelet gives every container ({SVC}_SERVICE_HOST,
// {SVC}_PORT_6379_TCP_ADDR, ...): k/k pkg/kubelet/envvars/envvars.go (FromServices), k8s-notes
// §3.8. kubesim sets them in its pods; lpk-proxy rewrites them to point at its own addresses.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lpk::kube {

/// One port of a Service, as its spec lists it.
struct ServicePort {
  std::string name;  ///< may be empty (only the first port of a service may be unnamed)
  std::uint16_t port = 0;
  std::string protocol = "TCP";  ///< TCP, UDP or SCTP; empty reads as TCP
};

/// The ports of a Service object (spec.ports) in order; malformed entries read as absent fields.
std::vector<ServicePort> service_ports(const nlohmann::json& service);

/// The kubelet's name for a service or port in variable names: upper case, '-' becomes '_'
/// (makeEnvVariableName).
std::string env_variable_name(std::string_view name);

/// The variables for service `name` with cluster IP `ip` (a bare address), in the kubelet's
/// order: {SVC}_SERVICE_HOST, {SVC}_SERVICE_PORT, {SVC}_SERVICE_PORT_{NAME} per named port,
/// {SVC}_PORT (first port), and per port {SVC}_PORT_{port}_{PROTO} with _PROTO, _PORT and
/// _ADDR. The URL forms bracket an IPv6 address (tcp://[fd00::1]:443). Empty without ports.
std::vector<std::pair<std::string, std::string>> service_link_variables(
    std::string_view name, std::string_view ip, const std::vector<ServicePort>& ports);

}  // namespace lpk::kube
