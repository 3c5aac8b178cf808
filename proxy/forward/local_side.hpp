#pragma once
// The developer machine's side of a session, as `run` and `connect` both run it: one io_context,
// the address pool, the listeners (Forwarder), the stub DNS, and the tunnels their streams ride;
// signals, and an orderly stop that lets each tunnel's GOAWAY go out before the io_context ends.
//
// Threading: everything on io() from the thread that calls run(); stop() is idempotent.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "dns/cluster_resolver.hpp"
#include "dns/name_table.hpp"
#include "proxy/forward/address_pool.hpp"
#include "proxy/forward/forwarder.hpp"
#include "proxy/forward/stub_dns.hpp"
#include "proxy/tunnel/client.hpp"

namespace lpk::proxy {

class LocalSide {
 public:
  explicit LocalSide(boost::asio::ip::network_v4 pool);
  ~LocalSide();

  boost::asio::io_context& io() { return io_; }
  AddressPool& pool() { return pool_; }
  Forwarder& forwarder() { return forwarder_; }

  /// Adds a tunnel to an agent; it starts with run() (or at once when run() is under way).
  std::shared_ptr<tunnel::TunnelClient> add_tunnel(tunnel::LinkDialer dialer,
                                                   tunnel::SessionOptions options,
                                                   std::shared_ptr<tunnel::Dialer> inbound);
  /// Stops `tunnel` (GOAWAY; its streams end) and forgets it: an agent pod that went away.
  void remove_tunnel(const std::shared_ptr<tunnel::TunnelClient>& tunnel);
  const std::vector<std::shared_ptr<tunnel::TunnelClient>>& tunnels() const { return tunnels_; }
  /// How outbound streams (the listeners', the agent services') reach the cluster: each new one
  /// through the tunnel that is up and carries the fewest streams, so that every agent carries
  /// its share and one slow or lost agent pod does not take the session with it; while none is
  /// up, through the oldest, which holds it until one is (bounded).
  OpenStream outbound();

  /// Starts the stub DNS on options.listen with `table`; `cluster` (may be null) answers the
  /// cluster names the table lacks and must outlive this object. A Problem naming the address
  /// when it cannot bind.
  tunnel::Result<void> start_dns(const StubDnsOptions& options, const dns::TableSpec& table,
                                 dns::ClusterResolver* cluster);
  StubDns* dns() { return dns_.get(); }

  /// SIGINT, SIGTERM and SIGHUP call this (default: stop(0)); it may call stop() or wait for more.
  /// SIGHUP is a closed terminal, such as the IDE ending its task: nobody is left to press Ctrl-C.
  std::function<void(int signal)> on_signal;
  /// Called once by stop() before the listeners and tunnels close: what the owner must stop
  /// first (its control socket, its watches).
  std::function<void()> on_stop;

  /// Starts the listeners and tunnels and runs the io_context until stop() has finished;
  /// returns the exit code stop() was given.
  int run();
  /// Idempotent: on_stop, then the stub DNS, listeners and tunnels (GOAWAY), then the
  /// io_context after a short grace.
  void stop(int exit_code);
  bool stopping() const { return stopping_; }

 private:
  void wait_for_signal();

  boost::asio::io_context io_{1};
  AddressPool pool_;
  Forwarder forwarder_;
  std::shared_ptr<tunnel::TunnelClient> pick_outbound() const;

  std::vector<std::shared_ptr<tunnel::TunnelClient>> tunnels_;
  std::unique_ptr<StubDns> dns_;
  boost::asio::signal_set signals_{io_, SIGINT, SIGTERM, SIGHUP};
  boost::asio::steady_timer grace_{io_};
  bool running_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
};

}  // namespace lpk::proxy
