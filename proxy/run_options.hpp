#pragma once
// Options of `lpk-proxy run`, parsed from the command line. Pure; errors are one-line
// std::invalid_argument messages.

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/udp.hpp>
#include <optional>
#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "proxy/service_map.hpp"

namespace lpk::proxy {

/// --agent-pod NS/POD[:PORT]: reach the agent through a pod port-forward.
struct AgentPod {
  std::string pod_namespace;
  std::string pod;
  std::uint16_t port = 4590;
};

struct RunOptions {
  tunnel::Target agent;                       // --agent HOST:PORT
  std::optional<AgentPod> agent_pod;          // --agent-pod NS/POD[:PORT] (instead of --agent)
  std::string kubeconfig;                     // --kubeconfig (with --agent-pod)
  std::string context;                        // --context (with --agent-pod)
  std::vector<Mapping> mappings;              // --map, --map-file
  boost::asio::ip::network_v4 pool;           // --pool
  InboundRoutes inbound;                      // --local-port
  std::string secret;                         // --secret-file
  std::string log_level = "info";
  std::chrono::milliseconds connect_timeout{10'000};
  std::optional<boost::asio::ip::udp::endpoint> dns;  // --dns ADDR:PORT: run the stub DNS
  std::string zone = "cluster.local";                 // --zone
  std::string session_namespace = "default";          // --namespace
  std::string resolv_conf;                            // --resolv-conf (upstreams to forward to)
};

inline constexpr const char* kRunUsage =
    "usage: lpk-proxy run --agent HOST:PORT | --agent-pod NS/POD[:PORT] [--kubeconfig PATH]\n"
    "                     [--context NAME] [--map NAME:PORT=HOST:PORT | ADDR:PORT=HOST:PORT]...\n"
    "                     [--map-file PATH] [--pool CIDR] [--local-port PORT | LOCAL:REMOTE]...\n"
    "                     [--dns ADDR:PORT [--namespace NS] [--zone ZONE] [--resolv-conf PATH]]\n"
    "                     [--secret-file PATH] [--log-level LEVEL]";

RunOptions parse_run_options(std::span<const std::string> args);

/// Parses NS/POD[:PORT] (port 4590 when absent); throws std::invalid_argument.
AgentPod parse_agent_pod(const std::string& value);

/// `--dns ADDR:PORT` (an IP address; port 0 allowed) as the stub DNS's listen endpoint.
/// Throws std::invalid_argument saying what is wrong.
boost::asio::ip::udp::endpoint parse_dns_listen(const std::string& value);

/// Reads a secret file (trailing newline dropped); throws std::invalid_argument.
std::string read_secret_file(const std::string& path);

}  // namespace lpk::proxy
