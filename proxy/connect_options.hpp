#pragma once
// Options of `lpk-proxy connect` and `lpk-proxy restore`, parsed from the command line. Pure;
// errors are one-line std::invalid_argument messages.

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kube/config.hpp"
#include "proxy/service_map.hpp"

namespace lpk::proxy {

struct ConnectOptions {
  std::string service;                       // --service (required)
  kube::LoadOptions kube;                    // --kubeconfig, --context, -n/--namespace
  std::vector<std::string> extra_namespaces; // --also-namespace: more services to map
  InboundRoutes inbound;                     // --local-port PORT | LOCAL:REMOTE
  std::string container;                     // --container
  std::string agent_image = "lpk/lpk-agent:dev";
  std::string env_file;                      // --env-file
  boost::asio::ip::network_v4 pool;          // --pool
  std::optional<boost::asio::ip::udp::endpoint> dns;  // --dns ADDR:PORT (default: pool, :53)
  std::string zone = "cluster.local";
  std::string resolv_conf;                   // upstreams for names outside the cluster
  std::uint64_t file_limit = 1 << 20;        // --file-limit BYTES per file
  std::chrono::seconds timeout{180};         // --timeout: each rollout
  std::string log_level = "info";
  std::vector<std::string> command;          // after `--`
};

inline constexpr const char* kConnectUsage =
    "usage: lpk-proxy connect --service NAME [-n NS] [--kubeconfig FILE] [--context NAME]\n"
    "           [--local-port PORT | LOCAL:REMOTE]... [--container NAME] [--agent-image IMAGE]\n"
    "           [--env-file PATH] [--also-namespace NS]... [--dns ADDR:PORT] [--pool CIDR]\n"
    "           [--zone ZONE] [--resolv-conf PATH] [--file-limit BYTES] [--timeout SECONDS]\n"
    "           [--log-level LEVEL] [-- COMMAND ARGS...]";

ConnectOptions parse_connect_options(std::span<const std::string> args);

struct RestoreOptions {
  kube::LoadOptions kube;
  bool all = false;          // --all: every workload lpk changed in the namespace(s)
  bool all_namespaces = false;  // -A with --all
  std::chrono::seconds timeout{180};
};

inline constexpr const char* kRestoreUsage =
    "usage: lpk-proxy restore [--all [-A]] [-n NS] [--kubeconfig FILE] [--context NAME]\n"
    "                         [--timeout SECONDS]\n"
    "  without --all: restores what sessions of this machine left changed when they died\n"
    "  with --all: every workload in the namespace (-A: all namespaces) carrying lpk's annotation";

RestoreOptions parse_restore_options(std::span<const std::string> args);

}  // namespace lpk::proxy
