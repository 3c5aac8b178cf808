#include "proxy/connect_options.hpp"

#include <algorithm>
#include <stdexcept>

#include "proxy/address_pool.hpp"
#include "proxy/run_options.hpp"

namespace lpk::proxy {

namespace {

std::uint64_t parse_number(const std::string& flag, const std::string& value, std::uint64_t max) {
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || n == 0 || n > max) {
    throw std::invalid_argument(flag + " wants a positive number up to " + std::to_string(max) +
                                ", got '" + value + "'");
  }
  return n;
}

/// Flags both subcommands share; returns false when `flag` is not one of them.
bool parse_kube_flag(const std::string& flag, const std::string& value, kube::LoadOptions& o) {
  if (flag == "--kubeconfig") o.kubeconfig = value;
  else if (flag == "--context") o.context = value;
  else if (flag == "-n" || flag == "--namespace") o.namespace_override = value;
  else return false;
  return true;
}

}  // namespace

ConnectOptions parse_connect_options(std::span<const std::string> args) {
  ConnectOptions o;
  o.pool = AddressPool::default_pool();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& flag = args[i];
    if (flag == "--") {
      o.command.assign(args.begin() + i + 1, args.end());
      if (o.command.empty()) throw std::invalid_argument("`--` must be followed by a command");
      break;
    }
    if (i + 1 >= args.size()) throw std::invalid_argument("unknown flag or missing value: " + flag);
    const auto& value = args[++i];
    if (parse_kube_flag(flag, value, o.kube)) continue;
    if (flag == "--service") o.service = value;
    else if (flag == "--also-namespace") o.extra_namespaces.push_back(value);
    else if (flag == "--local-port") o.inbound.add(value);
    else if (flag == "--container") o.container = value;
    else if (flag == "--agent-image") o.agent_image = value;
    else if (flag == "--env-file") o.env_file = value;
    else if (flag == "--dns") o.dns = parse_dns_listen(value);
    else if (flag == "--zone") o.zone = value;
    else if (flag == "--resolv-conf") o.resolv_conf = value;
    else if (flag == "--file-limit") o.file_limit = parse_number(flag, value, 1ull << 30);
    else if (flag == "--timeout") o.timeout = std::chrono::seconds(parse_number(flag, value, 3600));
    else if (flag == "--pool") {
      boost::system::error_code ec;
      o.pool = boost::asio::ip::make_network_v4(value, ec);
      if (ec) throw std::invalid_argument("--pool wants a CIDR such as 127.77.0.0/16");
      AddressPool check(o.pool);  // throws if outside 127.0.0.0/8
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
  if (o.service.empty()) throw std::invalid_argument("--service NAME is required");
  return o;
}

RestoreOptions parse_restore_options(std::span<const std::string> args) {
  RestoreOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& flag = args[i];
    if (flag == "--all") { o.all = true; continue; }
    if (flag == "-A" || flag == "--all-namespaces") { o.all_namespaces = true; continue; }
    if (i + 1 >= args.size()) throw std::invalid_argument("unknown flag or missing value: " + flag);
    const auto& value = args[++i];
    if (parse_kube_flag(flag, value, o.kube)) continue;
    if (flag == "--timeout") o.timeout = std::chrono::seconds(parse_number(flag, value, 3600));
    else throw std::invalid_argument("unknown flag " + flag);
  }
  if (o.all_namespaces && !o.all) throw std::invalid_argument("-A goes with --all");
  return o;
}

}  // namespace lpk::proxy
