#pragma once
// GET .../pods/NAME/portforward?ports=P as a WebSocket with the v4.channel.k8s.io (binary)
// or v4.base64.channel.k8s.io (text) subprotocol, framed as the kubelet frames it: data
// channel 2i and error channel 2i+1 per requested port, each opened with a port-prefix
// frame; one TCP connection per port to localhost inside the pod's network namespace.

#include <functional>
#include <map>
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

 private:
  std::function<std::string(const std::string&, const std::string&)> netns_of_;
  std::function<std::string(const std::string&, const std::string&)> uid_of_;
};

}  // namespace lpk::kubesim
