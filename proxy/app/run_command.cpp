#include "proxy/app/run_command.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>
#include <memory>

#include "kube/auth.hpp"
#include "proxy/app/options.hpp"
#include "proxy/control/console.hpp"
#include "proxy/control/logging.hpp"
#include "proxy/forward/local_side.hpp"
#include "proxy/forward/portforward_link.hpp"
#include "proxy/tunnel/handshake.hpp"
#include "proxy/tunnel/listen.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

void listen_udp(LocalSide& side, const asio::ip::udp::endpoint& endpoint,
                const tunnel::Target& target) {
  auto bound = side.forwarder().listen_udp(endpoint, target);
  if (!bound) {
    std::fprintf(stderr, "lpk-proxy: %s\n", bound.error().message.c_str());
    return;
  }
  const tcp::endpoint as_tcp(bound->address(), bound->port());
  console::print_line(console::kListen, tunnel::endpoint_text(as_tcp) + "/udp", target.to_string());
}

/// Binds every mapping (a port that cannot be bound is reported and skipped) and returns the
/// ports bound for each service name, for the stub DNS.
std::map<std::string, std::vector<std::uint16_t>> listen_on_mappings(LocalSide& side,
                                                                     const RunOptions& options) {
  std::map<std::string, std::vector<std::uint16_t>> named;
  for (const auto& m : options.mappings) {
    auto address = m.address ? *m.address : asio::ip::address(*side.pool().allocate(m.name));
    if (m.target.datagram) {
      listen_udp(side, asio::ip::udp::endpoint(address, m.port), m.target);
      continue;
    }
    auto bound = side.forwarder().listen(tcp::endpoint(address, m.port), m.target);
    if (!bound) {
      std::fprintf(stderr, "lpk-proxy: %s\n", bound.error().message.c_str());
      continue;
    }
    console::print_line(console::kListen, tunnel::endpoint_text(*bound), m.target.to_string());
    if (!m.name.empty()) named[m.name].push_back(bound->port());
  }
  return named;
}

tunnel::Result<void> start_dns(LocalSide& side, const RunOptions& options,
                               const std::map<std::string, std::vector<std::uint16_t>>& named) {
  std::vector<NamedService> services;
  for (const auto& [name, ports] : named) {
    services.push_back({name, asio::ip::address(*side.pool().allocate(name)), ports});
  }
  StubDnsOptions dns{*options.dns, options.zone, options.session_namespace, options.resolv_conf};
  auto started = side.start_dns(dns, table_for(services, dns), nullptr);
  if (!started) return started;
  auto ep = side.dns()->endpoint();
  console::print_line(console::kDns, ep.address().to_string(), ep.port());
  return {};
}

}  // namespace

int run_command(const std::vector<std::string>& args) {
  RunOptions options;
  try {
    options = parse_run_options(args);
  } catch (const std::exception& e) {
    return fail(std::string(e.what()) + " (see lpk-proxy run --help)", 2);
  }
  // --agent-pod: the agent is reached through a pod port-forward of the configured cluster.
  std::unique_ptr<kube::Credentials> credentials;
  auto dialer = tunnel::tcp_link_dialer(options.agent);
  if (options.agent_pod) {
    try {
      credentials = std::make_unique<kube::Credentials>(kube::load_config(options.kube));
    } catch (const std::exception& e) {
      return fail(e.what(), 2);
    }
    const auto& pod = *options.agent_pod;
    dialer = portforward_link_dialer(credentials->config(), *credentials, pod.pod_namespace,
                                     pod.pod, pod.port);
  }
  LocalSide side(options.pool);
  tunnel::SessionOptions session;
  session.secret = options.secret;
  session.dead_link_timeout = options.dead_link_timeout;
  session.resume_grace = options.resume_grace;
  auto inbound = std::make_shared<LocalDialer>(options.inbound, options.connect_timeout);
  auto& tunnel = *side.add_tunnel(dialer, session, inbound);
  auto log_path = setup_logging(tunnel.session_id_text(), options.log_level, options.json_logs);
  if (!log_path.empty()) spdlog::info("logging to {}", log_path);

  auto named = listen_on_mappings(side, options);
  if (options.dns) {
    if (auto dns = start_dns(side, options, named); !dns) {
      return fail(dns.error().message + "; choose another --dns address or port (port 53 needs "
                  "root)", 1);
    }
  }
  bool announced = false;
  tunnel.on_up = [&](tunnel::Session&) {
    if (!std::exchange(announced, true)) console::print_line(console::kReady);
  };
  tunnel.on_fatal = [&](const std::string& why) {
    std::fprintf(stderr, "lpk-proxy: %s; this proxy stops\n", why.c_str());
    side.stop(3);
  };
  return side.run();
}

}  // namespace lpk::proxy
