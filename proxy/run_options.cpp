#include "proxy/run_options.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "proxy/address_pool.hpp"

namespace lpk::proxy {

std::string read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read the secret file " + path);
  std::stringstream s;
  s << in.rdbuf();
  auto secret = s.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) throw std::invalid_argument("the secret file " + path + " is empty");
  return secret;
}

namespace {
// A namespace or pod name as Kubernetes allows it: lowercase letters, digits, '-' and '.'.
bool is_object_name(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}
}  // namespace

AgentPod parse_agent_pod(const std::string& value) {
  AgentPod pod;
  auto slash = value.find('/');
  auto colon = value.find(':', slash == std::string::npos ? 0 : slash);
  pod.pod_namespace = value.substr(0, slash);
  if (slash != std::string::npos) pod.pod = value.substr(slash + 1, colon - slash - 1);
  bool port_ok = true;
  if (colon != std::string::npos) {
    auto text = value.substr(colon + 1);
    port_ok = !text.empty() && text.size() <= 5 &&
              text.find_first_not_of("0123456789") == std::string::npos &&
              std::stoul(text) >= 1 && std::stoul(text) <= 65535;
    if (port_ok) pod.port = static_cast<std::uint16_t>(std::stoul(text));
  }
  if (slash == std::string::npos || !is_object_name(pod.pod_namespace) ||
      !is_object_name(pod.pod) || !port_ok) {
    throw std::invalid_argument("--agent-pod wants NAMESPACE/POD[:PORT] such as "
                                "demo/api-7d4f9:4590, got '" + value + "'");
  }
  return pod;
}

boost::asio::ip::udp::endpoint parse_dns_listen(const std::string& value) {
  // An explicit mapping's left side has the same form (ADDR:PORT, port 0 allowed).
  Mapping as_listen;
  try {
    as_listen = parse_mapping(value + "=127.0.0.1:1");
  } catch (const std::invalid_argument&) {
  }
  if (!as_listen.address) {
    throw std::invalid_argument("--dns wants ADDR:PORT with an IP address, such as "
                                "127.77.0.53:5353, got '" + value + "'");
  }
  return {*as_listen.address, as_listen.port};
}

RunOptions parse_run_options(std::span<const std::string> args) {
  RunOptions o;
  o.pool = AddressPool::default_pool();
  bool have_agent = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& flag = args[i];
    if (i + 1 >= args.size()) throw std::invalid_argument("unknown flag or missing value: " + flag);
    const auto& value = args[++i];
    if (flag == "--agent") {
      o.agent = parse_target(value);
      have_agent = true;
    } else if (flag == "--agent-pod") {
      o.agent_pod = parse_agent_pod(value);
    } else if (flag == "--kubeconfig") {
      o.kubeconfig = value;
    } else if (flag == "--context") {
      o.context = value;
    } else if (flag == "--map") {
      o.mappings.push_back(parse_mapping(value));
    } else if (flag == "--map-file") {
      std::ifstream in(value);
      if (!in) throw std::invalid_argument("cannot read the map file " + value);
      for (auto& m : parse_mapping_file(in, value)) o.mappings.push_back(std::move(m));
    } else if (flag == "--pool") {
      boost::system::error_code ec;
      o.pool = boost::asio::ip::make_network_v4(value, ec);
      if (ec) throw std::invalid_argument("--pool wants a CIDR such as 127.77.0.0/16");
      AddressPool check(o.pool);  // throws if outside 127.0.0.0/8
    } else if (flag == "--dns") {
      o.dns = parse_dns_listen(value);
    } else if (flag == "--namespace") {
      o.session_namespace = value;
    } else if (flag == "--zone") {
      o.zone = value;
    } else if (flag == "--resolv-conf") {
      o.resolv_conf = value;
    } else if (flag == "--local-port") {
      o.inbound.add(value);
    } else if (flag == "--secret-file") {
      o.secret = read_secret_file(value);
    } else if (flag == "--log-level") {
      static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
      if (std::find(std::begin(kLevels), std::end(kLevels), value) == std::end(kLevels)) {
        throw std::invalid_argument("--log-level wants trace, debug, info, warn or error");
      }
      o.log_level = value;
    } else {
      throw std::invalid_argument("unknown flag " + flag);
    }
  }
  if (have_agent && o.agent_pod) {
    throw std::invalid_argument("--agent and --agent-pod exclude each other; give one");
  }
  if (!have_agent && !o.agent_pod) {
    throw std::invalid_argument("--agent HOST:PORT or --agent-pod NS/POD[:PORT] is required");
  }
  if (!o.agent_pod && (!o.kubeconfig.empty() || !o.context.empty())) {
    throw std::invalid_argument("--kubeconfig and --context only apply with --agent-pod");
  }
  return o;
}

}  // namespace lpk::proxy
