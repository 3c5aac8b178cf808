#pragma once
// The heartbeat of a `connect` session: renews the session's Lease (restorer.hpp) every few
// seconds from a thread of its own, so that the restorer in the cluster knows the developer's
// machine is still there. A failed renewal is logged and tried again at the next beat; a Lease
// that is not there yet is waited for, and one that is gone once renewed is not made again
// (the session is being restored).

#include <chrono>
#include <string>
#include <thread>

#include "kube/client.hpp"

namespace lpk::proxy {

class Heartbeat {
 public:
  /// Renews Lease `name` in `ns` every `interval` through `client` (which must outlive it).
  Heartbeat(kube::Client& client, std::string ns, std::string name,
            std::chrono::milliseconds interval);
  ~Heartbeat() { stop(); }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  /// Starts the thread; renews at once.
  void start();
  /// Ends the thread (within one renewal call); idempotent.
  void stop();

  /// Renews every few seconds, and at least four times per orphan timeout.
  static std::chrono::milliseconds interval_for(std::chrono::seconds orphan_timeout);

 private:
  void beat(std::stop_token stop);
  bool renew();  ///< false when the Lease is gone after it was renewed

  kube::Client& client_;
  std::string path_;
  std::chrono::milliseconds interval_;
  bool renewed_ = false;  ///< touched by the thread only
  std::jthread thread_;
};

}  // namespace lpk::proxy
