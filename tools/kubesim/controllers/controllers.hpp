#pragma once
// The controller manager: after any change to the store it runs every controller once
// (level-triggered, coalesced), until the writes they make stop changing anything; and once
// a second whatever happens, for what depends on time alone (progress deadlines,
// minReadySeconds), as the real controllers requeue themselves for it.

#include <boost/asio.hpp>

#include "tools/kubesim/events.hpp"
#include "tools/kubesim/rest.hpp"

namespace lpk::kubesim {

class Controllers {
 public:
  /// simulate_pods: also run the no-runtime kubelet stand-in (reconcile_simulated_pods).
  Controllers(boost::asio::io_context& io, Rest& rest, EventRecorder& events,
              bool simulate_pods = false);
  ~Controllers();
  void start();
  void stop();

 private:
  void schedule();
  void wait_for_tick();
  void reconcile_all();

  boost::asio::io_context& io_;
  Rest& rest_;
  EventRecorder& events_;
  int listener_ = -1;
  bool scheduled_ = false;
  bool stopped_ = false;
  bool simulate_pods_;
  boost::asio::steady_timer resync_;
  boost::asio::steady_timer tick_;
};

// The individual controllers; each reads the store, writes through rest, records events.
void reconcile_deployments(Rest& rest, EventRecorder& events);
void reconcile_replicasets(Rest& rest, EventRecorder& events);
void reconcile_statefulsets(Rest& rest, EventRecorder& events);
void reconcile_endpoints(Rest& rest, EventRecorder& events);
void reconcile_jobs(Rest& rest, EventRecorder& events);
void reconcile_simulated_pods(Rest& rest, EventRecorder& events);

/// A Running pod status with one running container status per container, as a kubelet
/// reports it on the node at host_ip; ready sets the Ready and ContainersReady conditions.
json running_pod_status(const json& pod, const std::string& ip, const std::string& host_ip,
                        bool ready, const std::string& started);

}  // namespace lpk::kubesim
