#pragma once
// The HTTP face of the API: routes an authenticated request to discovery, the REST verbs,
// watches, or a subresource handler (port-forward), and writes JSON or Status answers.

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "tools/kubesim/http_server.hpp"
#include "tools/kubesim/rest.hpp"
#include "tools/kubesim/routes.hpp"

namespace lpk::kubesim {

struct WatchSettings {
  std::chrono::milliseconds bookmark_interval{std::chrono::seconds(60)};
  std::chrono::seconds default_timeout{1800};
};

class Api {
 public:
  using SubresourceHandler = std::function<asio::awaitable<bool>(
      Request&, TlsStream&, const Route&, const std::map<std::string, std::string>&)>;

  Api(Rest& rest, std::string server_addr, WatchSettings watch);

  asio::awaitable<bool> handle(Request& req, TlsStream& stream, const Identity& who);
  /// Serves GET/POST .../pods/NAME/portforward.
  void set_portforward(SubresourceHandler h) { portforward_ = std::move(h); }

 private:
  asio::awaitable<bool> dispatch(Request& req, TlsStream& stream, const Route& r,
                                 const std::map<std::string, std::string>& q);
  json respond_object(const Request& req, const Route& r, const json& obj,
                      const std::map<std::string, std::string>& q) const;
  asio::awaitable<bool> serve_watch(Request& req, TlsStream& stream, const Route& r,
                                    const std::map<std::string, std::string>& q);

  Rest& rest_;
  std::string server_addr_;
  WatchSettings watch_;
  SubresourceHandler portforward_;
};

/// Whether the Accept header asks for a meta.k8s.io Table.
bool wants_table(const Request& req);

}  // namespace lpk::kubesim
