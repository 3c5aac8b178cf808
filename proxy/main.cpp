// lpk-proxy: the developer-machine end of lpk. Subcommands parse their options, build the
// objects and run them until a signal.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dns/system_resolver.hpp"
#include "proxy/address_pool.hpp"
#include "proxy/connect.hpp"
#include "proxy/connect_options.hpp"
#include "proxy/connect_session.hpp"
#include "proxy/control.hpp"
#include "proxy/forwarder.hpp"
#include "proxy/logging.hpp"
#include "proxy/portforward_link.hpp"
#include "proxy/run_options.hpp"
#include "proxy/stub_dns.hpp"
#include "proxy/tunnel_client.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr const char* kUsage =
    "usage: lpk-proxy connect --service NAME [-n NS] [options] [-- COMMAND ARGS...]\n"
    "                                                  run a service of the cluster locally\n"
    "       lpk-proxy status|env|diagnostics [--session ID] [--json]\n"
    "                                                  ask a running session\n"
    "       lpk-proxy restore [--all]                   put back what a crashed session left\n"
    "       lpk-proxy run --agent HOST:PORT [options]   carry mapped services through an agent\n"
    "       lpk-proxy run --help                        options of run\n"
    "       lpk-proxy resolver install|uninstall|status [--dry-run] ...\n"
    "                                                  point the system resolver at lpk's stub DNS";

int run(const std::vector<std::string>& args) {
  lpk::proxy::RunOptions options;
  try {
    options = lpk::proxy::parse_run_options(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-proxy: %s (see lpk-proxy run --help)\n", e.what());
    return 2;
  }
  asio::io_context io(1);
  lpk::tunnel::SessionOptions session_options;
  session_options.secret = options.secret;
  auto inbound = std::make_shared<lpk::proxy::LocalDialer>(options.inbound, options.connect_timeout);
  // --agent-pod: the agent is reached through a pod port-forward of the configured cluster.
  std::unique_ptr<lpk::kube::Credentials> credentials;
  auto dialer = lpk::proxy::tcp_link_dialer(options.agent);
  if (options.agent_pod) {
    try {
      credentials = std::make_unique<lpk::kube::Credentials>(
          lpk::kube::load_config({options.kubeconfig, options.context, ""}));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lpk-proxy: %s\n", e.what());
      return 2;
    }
    const auto& pod = *options.agent_pod;
    dialer = lpk::proxy::portforward_link_dialer(credentials->config(), *credentials,
                                                 pod.pod_namespace, pod.pod, pod.port);
  }
  lpk::proxy::TunnelClient tunnel(io.get_executor(), dialer, session_options, inbound);
  auto log_path = lpk::proxy::setup_logging(tunnel.session_id_text(), options.log_level);
  if (!log_path.empty()) spdlog::info("logging to {}", log_path);

  lpk::proxy::AddressPool pool(options.pool);
  lpk::proxy::Forwarder forwarder(io.get_executor(), tunnel);
  std::map<std::string, std::vector<std::uint16_t>> named;  // service name -> ports
  for (const auto& m : options.mappings) {
    auto address = m.address ? *m.address : asio::ip::address(*pool.allocate(m.name));
    std::string error;
    auto bound = forwarder.listen(tcp::endpoint(address, m.port), m.target, error);
    if (!bound) {
      std::fprintf(stderr, "lpk-proxy: %s\n", error.c_str());
      continue;
    }
    auto shown = bound->address().to_string();
    if (bound->address().is_v6()) shown = "[" + shown + "]";
    std::printf("listen %s:%u -> %s\n", shown.c_str(), bound->port(), m.target.to_string().c_str());
    if (!m.name.empty()) named[m.name].push_back(bound->port());
  }
  std::unique_ptr<lpk::proxy::StubDns> dns;
  if (options.dns) {
    std::vector<lpk::proxy::NamedService> services;
    for (auto& [name, ports] : named) {
      services.push_back({name, asio::ip::address(*pool.allocate(name)), ports});
    }
    try {
      dns = std::make_unique<lpk::proxy::StubDns>(
          io, lpk::proxy::StubDnsOptions{*options.dns, options.zone, options.session_namespace,
                                         options.resolv_conf},
          services);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lpk-proxy: cannot start the stub DNS on %s:%u: %s; choose another "
                   "--dns address or port (port 53 needs root)\n",
                   options.dns->address().to_string().c_str(), options.dns->port(), e.what());
      return 1;
    }
    auto ep = dns->endpoint();
    std::printf("dns %s:%u\n", ep.address().to_string().c_str(), ep.port());
  }
  std::fflush(stdout);

  int exit_code = 0;
  bool announced = false;
  tunnel.on_up = [&](lpk::tunnel::Session&) {
    if (announced) return;
    announced = true;
    std::printf("ready\n");
    std::fflush(stdout);
  };
  tunnel.on_fatal = [&](const std::string& why) {
    std::fprintf(stderr, "lpk-proxy: %s; this proxy stops\n", why.c_str());
    exit_code = 3;
    forwarder.stop();
    if (dns) dns->stop();
    io.stop();
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer grace(io);
  signals.async_wait([&](boost::system::error_code, int) {
    if (dns) dns->stop();
    forwarder.stop();
    tunnel.stop();
    grace.expires_after(std::chrono::milliseconds(300));  // let the GOAWAY go out
    grace.async_wait([&](boost::system::error_code) { io.stop(); });
  });
  forwarder.start();
  tunnel.start();
  io.run();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::cout << kUsage << "\n";
    return args.empty() ? 2 : 0;
  }
  auto command = args[0];
  args.erase(args.begin());
  if (command == "run") {
    if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
      std::cout << lpk::proxy::kRunUsage << "\n";
      return 0;
    }
    return run(args);
  }
  if (command == "connect" || command == "restore") {
    if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
      std::cout << (command == "connect" ? lpk::proxy::kConnectUsage : lpk::proxy::kRestoreUsage)
                << "\n";
      return 0;
    }
    return command == "connect" ? lpk::proxy::run_connect(args) : lpk::proxy::run_restore(args);
  }
  if (command == "status" || command == "env" || command == "diagnostics") {
    args.insert(args.begin(), command);
    return lpk::proxy::run_control_command(args, std::cout, std::cerr);
  }
  if (command == "__child") return lpk::proxy::run_child_with_resolv_conf(args);
  if (command == "resolver") return lpk::dns::run_resolver_command(args, std::cout, std::cerr);
  std::fprintf(stderr, "lpk-proxy: unknown command '%s' (see lpk-proxy --help)\n",
               command.c_str());
  return 2;
}
