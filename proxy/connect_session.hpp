#pragma once
// The developer-machine half of `lpk-proxy connect`, once the agents run: one tunnel per agent
// pod (over the pod's port-forward), listeners and stub DNS names for every service of the
// mapped namespaces (kept current by a watch), the container's environment and files imported
// through the first agent, the control socket, and the child command.
//
// Threading: run() owns an io_context on the calling thread; the service watches run on their
// own threads (kube::Client blocks) and post what they see to it.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kube/client.hpp"
#include "proxy/connect_options.hpp"
#include "proxy/takeover.hpp"

namespace lpk::proxy {

struct SessionPlan {
  ConnectOptions options;
  std::string ns;          ///< the session namespace (the service's)
  std::string session_id;  ///< 8 hex digits: logs, control socket, files
  TakeoverTarget target;
  std::vector<nlohmann::json> agent_pods;
};

class ConnectSession {
 public:
  ConnectSession(SessionPlan plan, kube::Client& client);
  ~ConnectSession();

  /// Serves until the child exits (its exit code is returned), or until SIGINT/SIGTERM when
  /// there is no child (0), or a fatal tunnel error (1).
  int run();

 private:
  struct State;
  void on_signal(State& s, int signal);
  void start_watches(State& s, const std::vector<std::string>& namespaces);
  void start_control(State& s, const boost::asio::ip::udp::endpoint& dns);
  nlohmann::json status(State& s, const boost::asio::ip::udp::endpoint& dns) const;
  boost::asio::awaitable<void> prepare_and_run(State& s, boost::asio::ip::udp::endpoint dns);

  SessionPlan plan_;
  kube::Client& client_;
};

/// `lpk-proxy __child --resolv-conf FILE -- COMMAND...`: runs COMMAND in a private mount
/// namespace where /etc/resolv.conf is FILE, so that the child's resolver (glibc, musl, Go)
/// asks lpk's stub DNS without the machine's resolver being changed. Needs CAP_SYS_ADMIN;
/// without it the command runs with the machine's resolver and a warning.
int run_child_with_resolv_conf(const std::vector<std::string>& args);

}  // namespace lpk::proxy
