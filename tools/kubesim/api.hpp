#pragma once
// The HTTP face of the API: routes an authenticated request to discovery, the REST verbs,
// watches, or a subresource handler (port-forward), and writes JSON or Status answers.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "tools/kubesim/http_server.hpp"
#include "tools/kubesim/rest.hpp"
#include "tools/kubesim/routes.hpp"

namespace lpk::kubesim {

class TokenIssuer;

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
  /// Serves GET .../pods/NAME/log.
  void set_logs(SubresourceHandler h) { logs_ = std::move(h); }
  /// Issues TokenRequests (serviceaccounts/NAME/token).
  void set_tokens(TokenIssuer* tokens) { tokens_ = tokens; }
  /// POST /kubesim/faults/NAME[?ARGS] injects fault NAME (kubesim's own path; RBAC lets only
  /// cluster admins reach it): the handler returns what it did, or nullopt for no such fault.
  /// `asking` is the connection the request came on (a restart answers it before closing it).
  using FaultHandler = std::function<std::optional<json>(
      const std::string& name, const std::map<std::string, std::string>& q,
      const TlsStream& asking)>;
  void set_faults(FaultHandler h) { faults_ = std::move(h); }

 private:
  asio::awaitable<bool> dispatch(Request& req, TlsStream& stream, const Route& r,
                                 const std::map<std::string, std::string>& q,
                                 const Identity& who);
  /// Answers the requests that act instead of storing (reviews, token requests); nullopt
  /// for the others.
  std::optional<json> act(const Request& req, const Route& r, const Identity& who);
  json respond_object(const Request& req, const Route& r, const json& obj,
                      const std::map<std::string, std::string>& q) const;
  asio::awaitable<bool> serve_watch(Request& req, TlsStream& stream, const Route& r,
                                    const std::map<std::string, std::string>& q);

  Rest& rest_;
  std::string server_addr_;
  WatchSettings watch_;
  SubresourceHandler portforward_;
  SubresourceHandler logs_;
  TokenIssuer* tokens_ = nullptr;
  FaultHandler faults_;
};

/// Whether the Accept header asks for a meta.k8s.io Table.
bool wants_table(const Request& req);

}  // namespace lpk::kubesim
