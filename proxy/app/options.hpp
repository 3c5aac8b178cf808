#pragma once
// The command line of every lpk-proxy command that takes options: `run`, `connect`, `restore`,
// `doctor`.
// Pure; a bad flag is a one-line std::invalid_argument naming the flag and what it wants.

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kube/config.hpp"
#include "proxy/forward/service_map.hpp"
#include "proxy/tunnel/protocol.hpp"

namespace lpk::proxy {

/// Prints `lpk-proxy: MESSAGE` on stderr, the one line every command fails with, and returns
/// `code` (2 for a bad command line, 1 otherwise) for main to exit with.
int fail(const std::string& message, int code = 1);

// ---- run ------------------------------------------------------------------------------------

/// --agent-pod NS/POD[:PORT]: reach the agent through a pod port-forward.
struct AgentPod {
  std::string pod_namespace;
  std::string pod;
  std::uint16_t port = tunnel::kDefaultAgentPort;
};

struct RunOptions {
  tunnel::Target agent;                       // --agent HOST:PORT
  std::optional<AgentPod> agent_pod;          // --agent-pod NS/POD[:PORT] (instead of --agent)
  kube::LoadOptions kube;                     // --kubeconfig, --context (with --agent-pod)
  std::vector<Mapping> mappings;              // --map, --map-file
  boost::asio::ip::network_v4 pool;           // --pool
  InboundRoutes inbound;                      // --local-port
  std::string secret;                         // --secret-file
  std::string log_level = "info";
  bool json_logs = false;                     // --log-format json
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds dead_link_timeout{15'000};  // --dead-link-timeout
  std::chrono::milliseconds resume_grace{60'000};       // --resume-grace
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
    "                     [--secret-file PATH] [--dead-link-timeout DURATION]\n"
    "                     [--resume-grace DURATION] [--log-level LEVEL]\n"
    "                     [--log-format text|json]";

RunOptions parse_run_options(std::span<const std::string> args);

/// Parses NS/POD[:PORT] (tunnel::kDefaultAgentPort when absent).
AgentPod parse_agent_pod(const std::string& value);

/// `--dns ADDR:PORT` (an IP address; port 0 allowed) as the stub DNS's listen endpoint.
boost::asio::ip::udp::endpoint parse_dns_listen(const std::string& value);

// ---- connect --------------------------------------------------------------------------------

/// One service a `connect` session replaces (`--service NAME`) and what the per-service flags
/// say of it. A project file (lpk.yaml) maps onto a list of these.
struct ServiceSpec {
  std::string name;        // --service NAME
  InboundRoutes inbound;   // --local-port [NAME:]PORT | [NAME:]LOCAL:REMOTE
  std::string run;         // --run NAME='command line': run by /bin/sh -c, output prefixed
  std::string env_file;    // --env-file [NAME=]PATH
};

struct ConnectOptions {
  std::vector<ServiceSpec> services;         // --service, repeatable; empty: outbound only
  kube::LoadOptions kube;                    // --kubeconfig, --context, -n/--namespace
  std::vector<std::string> extra_namespaces; // --also-namespace: more services to map
  std::string container;                     // --container (one service only)
  std::string agent_image = "lpk/lpk-agent:dev";
  bool keep_image = false;                   // --keep-image: only the command changes
  /// --route-header [NAME=]VALUE (--route: the defaults): the services are not replaced; a
  /// shared router sends the requests carrying the header to this session (route_objects.hpp).
  /// Kept as given: an empty value becomes the session id, known later.
  std::optional<std::string> route_header;
  boost::asio::ip::network_v4 pool;          // --pool
  std::optional<boost::asio::ip::udp::endpoint> dns;  // --dns ADDR:PORT (default: pool, :53)
  std::string zone = "cluster.local";
  std::string resolv_conf;                   // upstreams for names outside the cluster
  bool system_resolver = false;              // --resolver: the machine's resolver to the stub
  std::uint64_t file_limit = 1 << 20;        // --file-limit BYTES per file
  std::chrono::seconds timeout{180};         // --timeout: each rollout
  std::chrono::milliseconds dead_link_timeout{15'000};  // --dead-link-timeout, both ends
  std::chrono::milliseconds resume_grace{60'000};       // --resume-grace, both ends
  std::string secret;                        // --secret-file; empty: a random one per session
  std::chrono::seconds orphan_timeout{600};  // --orphan-timeout: heartbeat age that restores; 0: off
  std::string log_level = "info";
  bool json_logs = false;                    // --log-format json: logs as JSON lines
  bool json_output = false;                  // --output json / --json: stdout as JSON lines
  /// --env NAME=VALUE (lpk.yaml's env): set for the command and in --env-file, over the
  /// container's; VALUE may hold tokens (connect/env_tokens.hpp). In order; the last one wins.
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> skip_files;       // --skip-file PATH: a container file or folder
  std::vector<std::string> command;          // after `--`: gets the first service's environment
};

inline constexpr const char* kConnectUsage =
    "usage: lpk-proxy connect [--service NAME]... [-n NS] [--kubeconfig FILE] [--context NAME]\n"
    "           [--local-port [SERVICE:]PORT | [SERVICE:]LOCAL:REMOTE]... [--container NAME]\n"
    "           [--run SERVICE='COMMAND LINE']... [--agent-image IMAGE] [--keep-image]\n"
    "           [--route-header [NAME=]VALUE | --route]\n"
    "           [--env-file [SERVICE=]PATH]... [--also-namespace NS]... [--dns ADDR:PORT]\n"
    "           [--pool CIDR] [--zone ZONE] [--resolv-conf PATH] [--resolver] [--file-limit BYTES]\n"
    "           [--timeout SECONDS] [--dead-link-timeout DURATION] [--resume-grace DURATION]\n"
    "           [--secret-file PATH] [--orphan-timeout DURATION] [--log-level LEVEL]\n"
    "           [--env NAME=VALUE]... [--skip-file PATH]... [--config FILE | --no-config]\n"
    "           [--output json | --json] [--log-format text|json] [-- COMMAND ARGS...]\n"
    "Several --service: each is replaced; with more than one, --local-port, --run and --env-file\n"
    "name their service (api:8080:80, api='./api', api=api.env). `-- COMMAND` gets the first\n"
    "service's environment; --run starts one command per service with its own.\n"
    "--env values may name ${service:NAME[.NS][:PORT]} (lpk's address of a service) and\n"
    "${files:/PATH} (an imported file). Settings not given as flags come from lpk.yaml, found\n"
    "from the current folder upward (docs/project-file.md).\n"
    "--route-header: nothing is replaced; requests carrying header NAME (default x-lpk-route)\n"
    "with VALUE (default: the session id) come to this machine, all others still go to the\n"
    "service's pods (a router shared by every routed session; `lpk-proxy routes` lists them).\n"
    "Without --service, nothing is replaced: an agent Deployment of the session's own gives\n"
    "every service of the namespaces a local name and address (outbound only).";

ConnectOptions parse_connect_options(std::span<const std::string> args);

// ---- restore --------------------------------------------------------------------------------

struct RestoreOptions {
  kube::LoadOptions kube;
  bool all = false;             // --all: every workload lpk changed in the namespace(s)
  bool all_namespaces = false;  // -A with --all
  bool force = false;           // --force: restore even a template someone changed meanwhile
  std::chrono::seconds timeout{180};
};

inline constexpr const char* kRestoreUsage =
    "usage: lpk-proxy restore [--all [-A]] [--force] [-n NS] [--kubeconfig FILE]\n"
    "                         [--context NAME] [--timeout SECONDS]\n"
    "  without --all: restores what sessions of this machine left changed when they died\n"
    "  with --all: every workload in the namespace (-A: all namespaces) carrying lpk's annotation\n"
    "  --force: restore a workload whose template someone changed during the session (a GitOps\n"
    "           sync, kubectl set image), which restore otherwise refuses, saying what changed";

RestoreOptions parse_restore_options(std::span<const std::string> args);

// ---- doctor ---------------------------------------------------------------------------------

struct DoctorOptions {
  std::string service;  ///< --service; empty: an outbound-only connect
  kube::LoadOptions kube;
  std::string container;  ///< --container
  std::string agent_image = "lpk/lpk-agent:dev";
  boost::asio::ip::network_v4 pool;                   ///< --pool
  std::optional<boost::asio::ip::udp::endpoint> dns;  ///< --dns ADDR:PORT
  bool system_resolver = false;                       ///< --resolver
  bool json = false;                                  ///< --json / --output json
};

inline constexpr const char* kDoctorUsage =
    "usage: lpk-proxy doctor [--service NAME] [-n NS] [--kubeconfig FILE] [--context NAME]\n"
    "           [--container NAME] [--agent-image IMAGE] [--pool CIDR] [--dns ADDR:PORT]\n"
    "           [--resolver] [--json | --output json]\n"
    "Checks what `connect` with the same flags needs; exit code 0 only when it would work.\n"
    "--json: the checks as an array of {name, ok, detail, fix}.";

DoctorOptions parse_doctor_options(std::span<const std::string> args);

// ---- routes ---------------------------------------------------------------------------------

struct RoutesOptions {
  kube::LoadOptions kube;
  bool all_namespaces = false;  ///< -A
  bool json = false;            ///< --json / --output json
};

inline constexpr const char* kRoutesUsage =
    "usage: lpk-proxy routes [-n NS | -A] [--kubeconfig FILE] [--context NAME]\n"
    "           [--json | --output json]\n"
    "Lists the services that lpk's router shares by header (routed connect sessions) and, for\n"
    "each, the sessions routing it: header, value, agent pods ready, who runs it.";

RoutesOptions parse_routes_options(std::span<const std::string> args);

/// `--output FORMAT`: true for json, false for text; anything else is a bad flag.
bool parse_output_json(const std::string& value);

/// `--log-format FORMAT`: true for json, false for text; anything else is a bad flag.
bool parse_log_format_json(const std::string& value);

}  // namespace lpk::proxy
