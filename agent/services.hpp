#pragma once
// Agent services: streams the proxy opens to reserved names under `lpk.internal` are answered
// by the agent itself instead of being dialled (proxy/tunnel/agent_services.hpp defines them).
//   env.lpk.internal:1   the environment document (agent/env_report.hpp), then the stream closes
//   dns.lpk.internal:53  DNS over TCP framing, forwarded to the pod's nameserver
//                        (agent/dns_forwarder.hpp)
//   files.lpk.internal:1 the mounted files, then what changes in them, until the proxy closes
// The service gets one end of a loopback TCP pair and the tunnel the other, so a service
// stream is an ordinary stream to the session (credit, half-close, reset).

#include <array>
#include <chrono>
#include <functional>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>
#include <string_view>

#include "agent/dns_forwarder.hpp"
#include "agent/env_report.hpp"
#include "proxy/tunnel/agent_services.hpp"
#include "proxy/tunnel/session.hpp"

namespace lpk::agent {

struct ServiceOptions {
  EnvReportOptions env;
  DnsForwarderOptions dns;
};

/// True for a name target inside `lpk.internal` (tunnel::is_service_name): never dialled.
bool is_service_target(const tunnel::Target& target);

/// Starts the service `target` names and returns the tunnel's end of its stream; an unknown
/// name is name_not_found, a wrong port refused, a DNS service without a nameserver
/// unreachable.
boost::asio::awaitable<tunnel::DialResult> dial_service(const tunnel::Target& target,
                                                        const ServiceOptions& options);

/// `walk()` (collect_files of the mounts), taken again up to `retries` times, `pause` apart,
/// while it meets a path that vanished under it (walk_met_missing): a kubelet's volume update
/// then reads as the new files, not as the old ones removed. Returns the last walk.
boost::asio::awaitable<FileReport> settled_walk(const std::function<FileReport()>& walk,
                                                std::chrono::milliseconds pause, int retries);

}  // namespace lpk::agent
