#pragma once
// What the router's connections share: options, the route table, counters and the set of live
// connections that stop() closes. Owned jointly (shared_ptr) by the Router and every
// connection coroutine, so a coroutine destroyed with its io_context never outlives it.

#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_set>

#include "agent/router/route_table.hpp"
#include "agent/router/router.hpp"

namespace lpk::router::detail {

class Connection;

struct Shared {
  explicit Shared(RouterOptions o) : options(std::move(o)) {}
  RouterOptions options;
  RouteTable table;
  std::uint64_t opaque_connections = 0;
  std::uint64_t h2_connections = 0;
  std::unordered_set<Connection*> live;
  bool draining = false;  // drain() or stop(): no new request starts
  bool stopped = false;
  std::function<void()> on_drained;  // called once `live` empties while draining
  std::optional<boost::asio::steady_timer> idle_sweep;  // Router::start's; stop() cancels it
};

}  // namespace lpk::router::detail
