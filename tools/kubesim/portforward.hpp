#pragma once
// GET .../pods/NAME/portforward?ports=P as a WebSocket with the v4.channel.k8s.io (binary)
// or v4.base64.channel.k8s.io (text) subprotocol, framed as the kubelet frames it: data
// channel 2i and error channel 2i+1 per requested port, each opened with a port-prefix
// frame; one TCP connection per port to localhost inside the pod's network namespace.

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "tools/kubesim/http_server.hpp"
#include "tools/kubesim/routes.hpp"

namespace lpk::kubesim {

/// The subprotocol the server picks: the first of the client's offers it supports; "" when
/// none was offered; nullopt when offers were made and none is supported (answer 403).
std::optional<std::string> pick_portforward_protocol(const std::string& offered);

class PortForward {
 public:
  /// netns_of(ns, name) gives the pod's network namespace, "" when it is not running.
  /// uid_of gives the pod's uid for error texts.
  PortForward(std::function<std::string(const std::string&, const std::string&)> netns_of,
              std::function<std::string(const std::string&, const std::string&)> uid_of);

  asio::awaitable<bool> serve(Request& req, TlsStream& stream, const Route& r,
                              const std::map<std::string, std::string>& q);

  // Faults a test (or a user) injects while sessions run, as real clusters cause them: an API
  // server or a kubelet restart cuts the connections, a network path freezes. Each returns how
  // many port-forwards it touched.

  /// Cuts every port-forward (TCP reset).
  std::size_t drop_all();
  /// Stops relaying on every current port-forward without closing it; new ones are served.
  std::size_t freeze_all();
  /// Relays again on the frozen ones.
  std::size_t thaw_all();
  /// Answers every new port-forward with 503 ServiceUnavailable for `how_long`, as an API
  /// server that is restarting or overloaded does; the current ones go on.
  void refuse_for(std::chrono::milliseconds how_long);

  /// The part of a running port-forward the faults reach (defined in portforward.cpp).
  struct Live;

 private:
  std::set<Live*> live_;
  std::chrono::steady_clock::time_point refuse_until_{};
  std::function<std::string(const std::string&, const std::string&)> netns_of_;
  std::function<std::string(const std::string&, const std::string&)> uid_of_;
};

}  // namespace lpk::kubesim
