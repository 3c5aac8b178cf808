#pragma once
// `lpk-proxy connect` and `lpk-proxy restore`: the subcommands that change the cluster. Each
// parses its options, prints one line for bad flags or kubeconfigs (exit 2), and always puts
// the workload back before it returns.

#include <boost/asio/ip/network_v4.hpp>
#include <string>
#include <vector>

#include "kube/config.hpp"
#include "proxy/forward/slot_claim.hpp"

namespace lpk::proxy {

/// The key a session's slot of --pool hashes from (its cluster and namespace), so that its
/// addresses are the same every time; `doctor` asks for the same slot.
std::string slot_key(const kube::RestConfig& config);

/// Whether the stub DNS address of `slot` is free on port 53. Only "in use" makes a slot
/// unusable: lacking the privilege for port 53 is the same in every slot, and the session says
/// so when it starts its stub.
bool stub_dns_port_free(boost::asio::ip::network_v4 slot);

/// Swaps the service's container for lpk-agent, serves the session (connect_session.hpp), and
/// restores the workload. Returns the child's exit code when there is a command.
int run_connect(const std::vector<std::string>& args);

/// Restores what dead sessions of this machine left changed; with --all, every workload lpk
/// changed in the namespace.
int run_restore(const std::vector<std::string>& args);

}  // namespace lpk::proxy
