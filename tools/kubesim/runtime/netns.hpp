#pragma once
// Network namespaces for the node and the pods, made with iproute2 (`ip`), and sockets
// opened inside them. Every namespace a kubesim makes is named "kubesim-<instance>-..."
// where the instance tag comes from its state directory: `down` and a restart after a crash
// find and remove their own namespaces, and never those of a kubesim with another state
// directory running next to it.

#include <filesystem>
#include <string>
#include <vector>

#include "tools/kubesim/network.hpp"

namespace lpk::kubesim {

inline constexpr const char* kNetnsPrefix = "kubesim-";
inline constexpr const char* kBridge = "kubesim0";
/// Locally administered, fixed: the pods' gateway MAC never changes (see create_node_netns).
inline constexpr const char* kBridgeMac = "02:6b:73:00:00:01";

/// The instance tag of a state directory: 8 hex digits of a hash of its absolute path.
std::string instance_tag(const std::filesystem::path& state_dir);
/// Selects the instance whose namespaces this process makes and removes. Call once, first.
void set_netns_instance(const std::string& tag);
/// "kubesim-<instance>-node".
std::string node_netns();
/// "kubesim-<instance>-p<index>".
std::string pod_netns(int index);

/// Runs `ip args...`; throws std::runtime_error with ip's stderr when it fails.
void run_ip(const std::vector<std::string>& args);
/// Runs a program (found on PATH) with stdout discarded; throws std::runtime_error with the
/// command and the last line of its stderr when it cannot start or exits non-zero.
void run_command(const std::vector<std::string>& argv);

/// Creates the node namespace: a bridge with the network's node address, and its service
/// range routed locally so that proxies can bind ClusterIPs.
void create_node_netns(const ClusterNetwork& network);

/// Creates netns name with eth0 (a veth on the node bridge) addressed ip in the pod range, lo
/// up, and a default route via the node. link is the host-side veth name (<= 15 chars).
void create_pod_netns(const std::string& name, const std::string& link, const std::string& ip,
                      const ClusterNetwork& network);

/// Deletes a named namespace (its veth goes with it). No error when it is already gone.
void delete_netns(const std::string& name);

/// What is left of network namespace `name` after its sandbox failed, for the log: whether
/// /run/netns/NAME is still mounted here (it holds the namespace) and how many /run/netns
/// mounts this mount namespace has.
std::string describe_netns_mount(const std::string& name);

/// SIGKILLs every process inside namespace `name`: what a crashed kubesim left running there
/// (a container's own children outlive the main process that died with kubesim).
void kill_processes_in(const std::string& name);

/// The namespaces of this instance that exist now.
std::vector<std::string> list_kubesim_netns();

/// A socket (socket(2) arguments) created inside netns name; -1 with errno on failure.
/// Must run on the io thread only: it switches that thread's namespace for the call.
int socket_in_netns(const std::string& name, int domain, int type, int protocol = 0);

/// "/run/netns/<name>".
std::string netns_path(const std::string& name);

}  // namespace lpk::kubesim
