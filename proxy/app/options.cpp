#include "proxy/app/options.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "proxy/connect/env_tokens.hpp"
#include "proxy/connect/environment.hpp"
#include "proxy/forward/address_pool.hpp"
#include "proxy/takeover/route_objects.hpp"
#include "proxy/tunnel/duration.hpp"
#include "proxy/tunnel/flags.hpp"
#include "proxy/tunnel/handshake.hpp"

namespace lpk::proxy {

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "lpk-proxy: %s\n", message.c_str());
  return code;
}

namespace {

using std::invalid_argument;
using tunnel::for_each_flag;

std::uint64_t parse_number(const std::string& flag, const std::string& value, std::uint64_t max) {
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || n == 0 || n > max) {
    throw invalid_argument(flag + " wants a positive number up to " + std::to_string(max) +
                           ", got '" + value + "'");
  }
  return n;
}

/// --kubeconfig and --context, which every command that talks to a cluster takes.
bool parse_kube_flag(const std::string& flag, const std::string& value, kube::LoadOptions& o) {
  if (flag == "--kubeconfig") o.kubeconfig = value;
  else if (flag == "--context") o.context = value;
  else return false;
  return true;
}

std::string parse_log_level(const std::string& value) {
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  if (std::find(std::begin(kLevels), std::end(kLevels), value) == std::end(kLevels)) {
    throw invalid_argument("--log-level wants trace, debug, info, warn or error");
  }
  return value;
}

boost::asio::ip::network_v4 parse_pool(const std::string& value) {
  boost::system::error_code ec;
  auto pool = boost::asio::ip::make_network_v4(value, ec);
  if (ec) throw invalid_argument("--pool wants a CIDR such as 127.77.0.0/16");
  AddressPool check(pool);  // throws if outside 127.0.0.0/8
  return pool;
}

// 0 turns the restorer off; below 10 s a slow API server could make it restore a live session.
std::chrono::seconds parse_orphan_timeout(const std::string& value) {
  if (value == "0") return std::chrono::seconds(0);
  auto d = tunnel::parse_duration(value);
  if (!d || *d < std::chrono::seconds(10) || *d > std::chrono::hours(24 * 7)) {
    throw invalid_argument("--orphan-timeout wants a duration from 10s to 168h, like 10m, or 0 "
                           "for no restorer, got '" + value + "'");
  }
  return std::chrono::duration_cast<std::chrono::seconds>(*d);
}

// A namespace or pod name as Kubernetes allows it: lowercase letters, digits, '-' and '.'.
bool is_object_name(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

void check_run(const RunOptions& o, bool have_agent) {
  if (have_agent && o.agent_pod) {
    throw invalid_argument("--agent and --agent-pod exclude each other; give one");
  }
  if (!have_agent && !o.agent_pod) {
    throw invalid_argument("--agent HOST:PORT or --agent-pod NS/POD[:PORT] is required");
  }
  if (!o.agent_pod && (!o.kube.kubeconfig.empty() || !o.kube.context.empty())) {
    throw invalid_argument("--kubeconfig and --context only apply with --agent-pod");
  }
}

std::string namespace_name(const std::string& flag, const std::string& value) {
  if (!is_object_name(value)) {
    throw invalid_argument(flag + " wants a namespace's name (lowercase letters, digits, '-'), "
                           "got '" + value + "'");
  }
  return value;
}

std::string parse_container_path(const std::string& flag, const std::string& value) {
  if (!value.starts_with("/") || value.find("/../") != std::string::npos || value.ends_with("/..")) {
    throw invalid_argument(flag + " wants an absolute path as the container sees it, such as "
                           "/var/run/secrets, got '" + value + "'");
  }
  return value;
}

/// --env NAME=VALUE, with the tokens of VALUE checked now rather than after the rollout.
std::pair<std::string, std::string> parse_env(const std::string& value) {
  auto eq = value.find('=');
  auto name = value.substr(0, eq);
  if (eq == std::string::npos || !is_portable_variable_name(name)) {
    throw invalid_argument("--env wants NAME=VALUE with NAME of letters, digits and _, got '" +
                           value + "'");
  }
  auto tokens = check_env_tokens(value.substr(eq + 1));
  if (!tokens) throw invalid_argument("--env " + name + ": " + tokens.error().message);
  return {name, value.substr(eq + 1)};
}

}  // namespace

bool parse_output_json(const std::string& value) {
  if (value != "json" && value != "text") {
    throw invalid_argument("--output wants json or text, got '" + value + "'");
  }
  return value == "json";
}

bool parse_log_format_json(const std::string& value) {
  if (value != "json" && value != "text") {
    throw invalid_argument("--log-format wants json or text, got '" + value + "'");
  }
  return value == "json";
}

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
    throw invalid_argument("--agent-pod wants NAMESPACE/POD[:PORT] such as demo/api-7d4f9:" +
                           std::to_string(tunnel::kDefaultAgentPort) + ", got '" + value + "'");
  }
  return pod;
}

boost::asio::ip::udp::endpoint parse_dns_listen(const std::string& value) {
  try {
    auto endpoint = parse_listen_endpoint(value);
    return {endpoint.address(), endpoint.port()};
  } catch (const invalid_argument&) {
    throw invalid_argument("--dns wants ADDR:PORT with an IP address, such as "
                           "127.77.0.53:5353, got '" + value + "'");
  }
}

RunOptions parse_run_options(std::span<const std::string> args) {
  RunOptions o;
  o.pool = AddressPool::default_pool();
  bool have_agent = false;
  for_each_flag(args, [&](const std::string& flag, const std::string& value) {
    if (parse_kube_flag(flag, value, o.kube)) return;
    if (flag == "--agent") {
      o.agent = parse_target(value);
      have_agent = true;
    } else if (flag == "--agent-pod") {
      o.agent_pod = parse_agent_pod(value);
    } else if (flag == "--map") {
      o.mappings.push_back(parse_mapping(value));
    } else if (flag == "--map-file") {
      std::ifstream in(value);
      if (!in) throw invalid_argument("cannot read the map file " + value);
      for (auto& m : parse_mapping_file(in, value)) o.mappings.push_back(std::move(m));
    } else if (flag == "--pool") {
      o.pool = parse_pool(value);
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
      o.secret = tunnel::read_secret_file(value).value();
    } else if (flag == "--dead-link-timeout") {
      o.dead_link_timeout = tunnel::parse_dead_link_timeout(value);
    } else if (flag == "--resume-grace") {
      o.resume_grace = tunnel::parse_resume_grace(value);
    } else if (flag == "--log-level") {
      o.log_level = parse_log_level(value);
    } else if (flag == "--log-format") {
      o.json_logs = parse_log_format_json(value);
    } else {
      throw invalid_argument("unknown flag " + flag);
    }
  });
  check_run(o, have_agent);
  return o;
}

namespace {

/// The per-service flags as given: they are matched to their `--service` once every flag is
/// read, since flags may come in any order.
struct PerServiceFlags {
  std::vector<std::string> local_ports, runs, env_files;
};

ServiceSpec* find_service(std::vector<ServiceSpec>& services, std::string_view name) {
  for (auto& s : services) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

/// The service an unprefixed per-service flag belongs to: the only one there is.
ServiceSpec& only_service(std::vector<ServiceSpec>& services, const std::string& flag,
                          const std::string& value, const std::string& example) {
  if (services.empty()) {
    throw invalid_argument(flag + " needs --service: without one nothing is replaced");
  }
  if (services.size() > 1) {
    throw invalid_argument(flag + " " + value + ": with several --service, say which one it is "
                           "for, as in " + flag + " " + services.front().name + example);
  }
  return services.front();
}

/// `--local-port [SERVICE:]PORT | [SERVICE:]LOCAL:REMOTE`: a first part that is not a number
/// names the service.
void add_local_port(std::vector<ServiceSpec>& services, const std::string& value) {
  auto colon = value.find(':');
  auto first = value.substr(0, colon);
  if (first.empty() || first.find_first_not_of("0123456789") == std::string::npos) {
    only_service(services, "--local-port", value, ":" + value).inbound.add(value);
    return;
  }
  auto* service = find_service(services, first);
  if (!service || colon == std::string::npos) {
    throw invalid_argument("--local-port " + value + ": '" + first + "' is neither a port nor "
                           "a --service; it wants [SERVICE:]PORT or [SERVICE:]LOCAL:REMOTE");
  }
  service->inbound.add(value.substr(colon + 1));
}

/// `--run SERVICE='command line'`.
void add_run(std::vector<ServiceSpec>& services, const std::string& value) {
  auto equals = value.find('=');
  auto* service = equals == std::string::npos ? nullptr
                                              : find_service(services, value.substr(0, equals));
  if (!service || equals + 1 == value.size()) {
    throw invalid_argument("--run wants SERVICE='COMMAND LINE' naming a --service, got '" +
                           value + "'");
  }
  if (!service->run.empty()) {
    throw invalid_argument("--run " + service->name + " is given twice; give one command each");
  }
  service->run = value.substr(equals + 1);
}

/// `--env-file [SERVICE=]PATH`.
void add_env_file(std::vector<ServiceSpec>& services, const std::string& value) {
  auto equals = value.find('=');
  auto* service = equals == std::string::npos ? nullptr
                                              : find_service(services, value.substr(0, equals));
  if (service) {
    service->env_file = value.substr(equals + 1);
  } else {
    only_service(services, "--env-file", value, "=" + value).env_file = value;
  }
}

void add_service(std::vector<ServiceSpec>& services, const std::string& name) {
  if (!is_object_name(name)) {
    throw invalid_argument("--service wants the name of a Service, got '" + name + "'");
  }
  if (find_service(services, name)) {
    throw invalid_argument("--service " + name + " is given twice; give each service once");
  }
  services.push_back({name, {}, {}, {}});
}

/// Inbound traffic of two services must not land on one local port: one local process would get
/// the other's requests.
void check_local_ports_distinct(const std::vector<ServiceSpec>& services) {
  std::map<std::uint16_t, std::string> claimed;
  for (const auto& s : services) {
    std::set<std::uint16_t> ports;
    if (s.inbound.any_port) ports.insert(*s.inbound.any_port);
    for (const auto& [remote, local] : s.inbound.by_remote) ports.insert(local);
    for (auto port : ports) {
      auto [it, fresh] = claimed.emplace(port, s.name);
      if (!fresh) {
        throw invalid_argument("--local-port: services " + it->second + " and " + s.name +
                               " both send their inbound traffic to local port " +
                               std::to_string(port) + "; give each its own port");
      }
    }
  }
}

void resolve_per_service(ConnectOptions& o, const std::vector<std::string>& names,
                         const PerServiceFlags& flags) {
  for (const auto& name : names) add_service(o.services, name);
  for (const auto& v : flags.local_ports) add_local_port(o.services, v);
  for (const auto& v : flags.runs) add_run(o.services, v);
  for (const auto& v : flags.env_files) add_env_file(o.services, v);
  check_local_ports_distinct(o.services);
  if (!o.container.empty() && o.services.size() != 1) {
    throw invalid_argument(o.services.empty()
                               ? "--container needs --service: it names the container to replace"
                               : "--container names one container: give it with one --service");
  }
  if (!o.command.empty() && !flags.runs.empty()) {
    throw invalid_argument("--run and `-- COMMAND` exclude each other; give the command as "
                           "--run " + o.services.front().name + "='COMMAND'");
  }
}

/// `--route-header [NAME=]VALUE` as given, once its name and value are known to be valid.
std::string check_route_header(const std::string& value) {
  parse_route_header(value, "session");  // throws with the sentence
  return value;
}

}  // namespace

ConnectOptions parse_connect_options(std::span<const std::string> args) {
  ConnectOptions o;
  o.pool = AddressPool::default_pool();
  std::vector<std::string> names;
  PerServiceFlags per_service;
  auto handle = [&](const std::string& flag, const std::string& value) {
    if (parse_kube_flag(flag, value, o.kube)) return;
    if (flag == "-n" || flag == "--namespace") o.kube.namespace_override = namespace_name(flag, value);
    else if (flag == "--service") names.push_back(value);
    else if (flag == "--also-namespace") o.extra_namespaces.push_back(namespace_name(flag, value));
    else if (flag == "--local-port") per_service.local_ports.push_back(value);
    else if (flag == "--run") per_service.runs.push_back(value);
    else if (flag == "--container") o.container = value;
    else if (flag == "--agent-image") o.agent_image = value;
    else if (flag == "--keep-image") o.keep_image = true;
    else if (flag == "--route-header") o.route_header = check_route_header(value);
    else if (flag == "--route") o.route_header = "";
    else if (flag == "--env-file") per_service.env_files.push_back(value);
    else if (flag == "--dns") o.dns = parse_dns_listen(value);
    else if (flag == "--zone") o.zone = value;
    else if (flag == "--resolv-conf") o.resolv_conf = value;
    else if (flag == "--resolver") o.system_resolver = true;
    else if (flag == "--file-limit") o.file_limit = parse_number(flag, value, 1ull << 30);
    else if (flag == "--timeout") o.timeout = std::chrono::seconds(parse_number(flag, value, 3600));
    else if (flag == "--dead-link-timeout") o.dead_link_timeout = tunnel::parse_dead_link_timeout(value);
    else if (flag == "--resume-grace") o.resume_grace = tunnel::parse_resume_grace(value);
    else if (flag == "--secret-file") o.secret = tunnel::read_secret_file(value).value();
    else if (flag == "--pool") o.pool = parse_pool(value);
    else if (flag == "--orphan-timeout") o.orphan_timeout = parse_orphan_timeout(value);
    else if (flag == "--log-level") o.log_level = parse_log_level(value);
    else if (flag == "--log-format") o.json_logs = parse_log_format_json(value);
    else if (flag == "--output") o.json_output = parse_output_json(value);
    else if (flag == "--json") o.json_output = true;
    else if (flag == "--env") o.env.push_back(parse_env(value));
    else if (flag == "--skip-file") o.skip_files.push_back(parse_container_path(flag, value));
    else throw invalid_argument("unknown flag " + flag);
  };
  for_each_flag(args, handle, &o.command, {"--resolver", "--json", "--keep-image", "--route"});
  resolve_per_service(o, names, per_service);
  if (o.services.empty() && o.route_header) {
    throw invalid_argument("--route-header needs --service: it names the service whose requests "
                           "are routed");
  }
  if (o.services.empty() && o.keep_image) {
    throw invalid_argument("--keep-image needs --service: it keeps the image of the container "
                           "lpk replaces");
  }
  return o;
}

RestoreOptions parse_restore_options(std::span<const std::string> args) {
  RestoreOptions o;
  auto handle = [&](const std::string& flag, const std::string& value) {
    if (parse_kube_flag(flag, value, o.kube)) return;
    if (flag == "--all") o.all = true;
    else if (flag == "-A" || flag == "--all-namespaces") o.all_namespaces = true;
    else if (flag == "--force") o.force = true;
    else if (flag == "-n" || flag == "--namespace") o.kube.namespace_override = value;
    else if (flag == "--timeout") o.timeout = std::chrono::seconds(parse_number(flag, value, 3600));
    else throw invalid_argument("unknown flag " + flag);
  };
  for_each_flag(args, handle, nullptr, {"--all", "-A", "--all-namespaces", "--force"});
  if (o.all_namespaces && !o.all) throw invalid_argument("-A goes with --all");
  return o;
}

DoctorOptions parse_doctor_options(std::span<const std::string> args) {
  DoctorOptions o;
  o.pool = AddressPool::default_pool();
  auto handle = [&](const std::string& flag, const std::string& value) {
    if (parse_kube_flag(flag, value, o.kube)) return;
    if (flag == "-n" || flag == "--namespace") o.kube.namespace_override = value;
    else if (flag == "--service") o.service = value;
    else if (flag == "--container") o.container = value;
    else if (flag == "--agent-image") o.agent_image = value;
    else if (flag == "--pool") o.pool = parse_pool(value);
    else if (flag == "--dns") o.dns = parse_dns_listen(value);
    else if (flag == "--resolver") o.system_resolver = true;
    else if (flag == "--json") o.json = true;
    else if (flag == "--output") o.json = parse_output_json(value);
    else throw invalid_argument("unknown flag " + flag);
  };
  for_each_flag(args, handle, nullptr, {"--resolver", "--json"});
  if (o.service.empty() && !o.container.empty()) {
    throw invalid_argument("--container needs --service: it names the container to replace");
  }
  return o;
}

RoutesOptions parse_routes_options(std::span<const std::string> args) {
  RoutesOptions o;
  auto handle = [&](const std::string& flag, const std::string& value) {
    if (parse_kube_flag(flag, value, o.kube)) return;
    if (flag == "-n" || flag == "--namespace") o.kube.namespace_override = namespace_name(flag, value);
    else if (flag == "-A" || flag == "--all-namespaces") o.all_namespaces = true;
    else if (flag == "--json") o.json = true;
    else if (flag == "--output") o.json = parse_output_json(value);
    else throw invalid_argument("unknown flag " + flag);
  };
  for_each_flag(args, handle, nullptr, {"-A", "--all-namespaces", "--json"});
  return o;
}

}  // namespace lpk::proxy
