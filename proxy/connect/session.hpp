#pragma once
// The developer-machine half of `lpk-proxy connect`, once the agents run: for every replaced
// service, one tunnel per agent pod (over the pod's port-forward), kept current by an informer
// on its workload's pods (a pod that an autoscaler, a drain or a deletion adds gets a tunnel;
// one that goes loses its own), whose inbound streams land on that service's local ports, and
// its container's environment and files imported through its own agents; listeners and stub
// DNS names for every service of the mapped namespaces (kept current by informers), the control
// socket, and the commands (`-- COMMAND`, or one `--run` command per service, session_serve.cpp).
// session_status.cpp answers the control socket.
//
// Threading: run() owns the io_context (LocalSide) on the calling thread; the informers run on
// their own threads (kube::Client blocks) and post what they see to it.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kube/client.hpp"
#include "kube/informer.hpp"
#include "proxy/connect/agent_services.hpp"
#include "proxy/connect/child_process.hpp"
#include "proxy/connect/environment.hpp"
#include "proxy/connect/file_sync.hpp"
#include "proxy/connect/session_resolver.hpp"
#include "proxy/connect/service_directory.hpp"
#include "proxy/control/server.hpp"
#include "proxy/forward/local_side.hpp"
#include "proxy/forward/service_map.hpp"
#include "proxy/takeover/takeover.hpp"
#include "proxy/tunnel/client.hpp"

namespace lpk::proxy {

/// One service the session replaced (or, outbound only, the session's own agent Deployment,
/// with an empty `service`): the takeover's outcome and that service's local choices.
struct ServicePlan {
  std::string service;
  TakeoverTarget target;
  std::vector<nlohmann::json> agent_pods;
  InboundRoutes inbound;  ///< where its inbound streams land locally
  std::string run;        ///< `--run`: its own command line (/bin/sh -c), output prefixed
  std::string env_file;   ///< also write its environment there (dotenv)
};

/// What the session serves, decided before it starts: the takeovers' outcomes and the local
/// choices (app/ fills it from the command line).
struct SessionPlan {
  std::vector<ServicePlan> services;  ///< at least one; the first's environment goes to `command`
  std::string ns;          ///< the session namespace (the services')
  std::string session_id;  ///< 8 hex digits: logs, control socket, files
  std::vector<std::string> extra_namespaces;  ///< more namespaces whose services get names
  /// The addresses this session may use: the slot of --pool it claimed (SlotClaim).
  boost::asio::ip::network_v4 pool = AddressPool::default_pool();
  /// Empty: the address of AddressPool::kStubDnsName in `pool`, port 53 (another port, said on
  /// stderr, when it cannot be bound).
  std::optional<boost::asio::ip::udp::endpoint> dns;
  std::string zone = "cluster.local";
  std::string resolv_conf;                    ///< upstreams for names outside the cluster
  /// `--resolver`: point the machine's resolver at the stub while the session runs.
  bool system_resolver = false;
  /// Set for the commands and in each env file over everything imported (--env, lpk.yaml's
  /// env), in order; values hold tokens (env_tokens.hpp) filled in when the environment is
  /// imported.
  std::vector<std::pair<std::string, std::string>> env_overrides;
  std::vector<std::string> skip_files;  ///< container paths whose files are not imported
  /// `-- COMMAND`: the child, with the first service's environment; empty (and no `run`):
  /// serve until a signal.
  std::vector<std::string> command;
  std::chrono::milliseconds dead_link_timeout{15'000};  ///< of the proxy's end of each tunnel
  std::chrono::milliseconds resume_grace{60'000};       ///< of the proxy's end of each tunnel
  std::string secret;  ///< what each tunnel proves to its agent (the session's Secret holds it)
  /// Set by a SIGINT/SIGTERM that arrived before the session took over the signals (during
  /// the rollout, or just after it): the session then ends at once instead of serving.
  const std::atomic<bool>* interrupted = nullptr;
};

/// Makes the link dialer for the agent in pod `pod` (a name from SessionPlan::agent_pods).
/// Empty: a port-forward to the pod's tunnel port through the session's client, which is what
/// lpk-proxy uses; tests reach in-process agents over plain TCP instead.
using AgentLinks = std::function<tunnel::LinkDialer(const std::string& pod)>;

class ConnectSession {
 public:
  ConnectSession(SessionPlan plan, kube::Client& client, AgentLinks links = {});
  ~ConnectSession();

  /// Serves until the commands exit (the first non-zero exit code is returned, else 0), or
  /// until SIGINT/SIGTERM when there is none (0), or a fatal tunnel error (1). Throws
  /// kube::ApiError when the first list of services fails and std::runtime_error when the stub
  /// DNS cannot start.
  int run();

 private:
  /// What the session keeps for one ServicePlan: its agents' tunnels, where its inbound
  /// streams land, and what its command gets (environment, files).
  struct Replaced {
    ServicePlan plan;
    std::shared_ptr<LocalDialer> inbound;
    nlohmann::json agent_template;  // what an agent pod runs (the workload's template now)
    std::map<std::string, std::shared_ptr<tunnel::TunnelClient>> agents;  // by pod name
    EnvMap imported;
    std::string imported_from;
    EnvMap lpk_variables;
    std::unique_ptr<FileMirror> files;
    std::uint64_t files_updates = 0;  // messages from the files service that changed a file
    std::shared_ptr<ChildProcess> child;
    std::string command;  // as status shows it
    /// A routed service: what its router says of this session (status), refreshed by
    /// watch_route; null until the router first answered.
    nlohmann::json route_stats;
  };

  void open_tunnels();
  /// A tunnel to agent pod `pod` of `service` (nothing when it has one).
  void add_agent(Replaced& service, const std::string& pod);
  /// Ends the tunnel to `pod` (its streams end with it) and says why.
  void remove_agent(Replaced& service, const std::string& pod, const std::string& why);
  /// One pod as it is now: a tunnel when it is an agent pod that runs, none when it is going.
  void reconcile_agent(Replaced& service, const nlohmann::json& pod);
  /// The workload's pods as listed: reconcile_agent for each, and no tunnel for the unlisted.
  void reconcile_agents(Replaced& service, const nlohmann::json& pods);
  void on_pod_event(Replaced& service, const kube::WatchEvent& event);
  void start_agent_informer(Replaced& service);
  /// Opens streams through `service`'s own agents (its environment, its files).
  OpenStream through(Replaced& service);
  std::vector<std::string> namespaces() const;
  void start_directory();
  void start_dns();
  /// `--resolver`: the machine's resolver to the stub until this session goes (resolver_).
  void point_system_resolver();
  void start_informers();
  void start_control();
  void on_signal(int signal);
  bool commands_running() const;
  nlohmann::json status() const;
  nlohmann::json diagnostics() const;
  std::size_t tunnels_up() const;
  std::size_t agent_count() const;

  /// The session once the tunnels start: import, wait for every tunnel, run the commands.
  boost::asio::awaitable<void> serve();
  boost::asio::awaitable<void> import_environment(Replaced& service);
  void write_env_file(const Replaced& service);
  /// Follows the agents' files service for the whole session (file_sync.hpp).
  boost::asio::awaitable<void> keep_files_current(Replaced& service);
  void report_files_change(Replaced& service, const MirrorChange& change);
  /// A routed service: asks its router every few seconds (its admin Service, through the
  /// tunnel) how many requests it sent to this session.
  boost::asio::awaitable<void> watch_route(Replaced& service);
  boost::asio::awaitable<void> wait_for_tunnels();
  /// Runs `-- COMMAND` or every `--run`, and stops the session once all have exited.
  boost::asio::awaitable<void> run_commands();
  /// Starts `argv` with `service`'s environment; its output prefixed with `prefix` unless empty.
  /// Returns its exit code.
  boost::asio::awaitable<int> run_child(Replaced& service, std::vector<std::string> argv,
                                        std::string prefix);

  SessionPlan plan_;
  kube::Client& client_;
  AgentLinks links_;
  LocalSide side_;
  boost::asio::ip::address_v4 dns_address_;  // the stub's, unless --dns says otherwise
  std::vector<std::unique_ptr<Replaced>> services_;  // in plan order; stable addresses
  std::unique_ptr<ServiceDirectory> directory_;
  std::shared_ptr<AgentDnsResolver> cluster_dns_;
  boost::asio::ip::udp::endpoint dns_endpoint_;
  std::unique_ptr<ControlServer> control_;
  boost::asio::steady_timer tunnel_came_up_;  // cancelled to wake whoever waits for tunnels
  std::unique_ptr<SessionResolver> resolver_;  // puts the machine's resolver back when it goes
  int interrupts_ = 0;
  // Last: destroyed (joined) first, while what their posted work touches still exists.
  std::vector<std::unique_ptr<kube::Informer>> informers_;
};

}  // namespace lpk::proxy
