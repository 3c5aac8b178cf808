#pragma once
// Where the router sends a request: the routes (a header value -> a session's pods) and the
// original pods, as the latest list of pods (or the routes file) says, with round robin among
// the live pods of each and a request count per route. Pure: no I/O.
//
// Threading: owned by the router's io thread; nothing here locks.

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lpk::router {

/// A backend address: a pod's IP with port 0 (the port the request came to, TP), or a full
/// address (the routes file's targets, used whatever TP).
using Backend = boost::asio::ip::tcp::endpoint;

struct RouteSpec {
  std::string header;  ///< lower case
  std::string value;
  std::string session;
  std::vector<Backend> pods;  ///< live ones only
  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
};

struct RouteSet {
  std::vector<RouteSpec> routes;
  std::vector<Backend> originals;
  friend bool operator==(const RouteSet&, const RouteSet&) = default;
};

class RouteTable {
 public:
  struct Pick {
    std::optional<boost::asio::ip::tcp::endpoint> endpoint;  ///< none: no original pod known
    const RouteSpec* route = nullptr;  ///< the route taken; nullptr for the originals
  };

  /// Replaces the routes and originals; request counts of routes that stay (same header and
  /// value) go on. Routes of one header and value are merged (their pods pooled).
  void update(RouteSet set);
  /// True once update() was called (the first list or file read is done).
  bool known() const { return known_; }

  /// The backend for a request whose header `name` (lower case) has the value `find(name)`
  /// returns (a std::optional<std::string_view>, or anything testable and dereferenceable to a
  /// string_view), with ports 0 made `port`, and counts it. A route whose pods are all gone
  /// counts as absent: the request goes to the originals.
  template <class Find>
  Pick pick(Find&& find, std::uint16_t port) {
    for (const auto& name : header_names_) {
      if (auto value = find(name)) {
        if (auto p = pick_route(name, std::string_view(*value), port); p.endpoint) return p;
      }
    }
    return pick_original(port);
  }

  /// The next original pod (round robin) for a connection that is not HTTP: not counted as a
  /// request.
  std::optional<boost::asio::ip::tcp::endpoint> next_original(std::uint16_t port);

  /// {"service":..., "routes":[{"header","value","session","pods":[...],"requests":N}],
  ///  "original":{"pods":[...],"requests":N}} (docs/router.md, GET /routes).
  nlohmann::json describe(const std::string& service) const;

 private:
  struct Route {
    RouteSpec spec;
    std::uint64_t* requests;  // in counts_
    std::size_t next = 0;
  };
  Pick pick_route(std::string_view header, std::string_view value, std::uint16_t port);
  Pick pick_original(std::uint16_t port);

  bool known_ = false;
  std::vector<Route> routes_;
  std::vector<std::string> header_names_;  // distinct, in the routes' order
  std::vector<Backend> originals_;
  std::size_t next_original_ = 0;
  std::uint64_t original_requests_ = 0;
  std::map<std::pair<std::string, std::string>, std::uint64_t> counts_;  // since start
};

/// A backend as /routes shows it: the IP of a pod, ADDR:PORT of a file's target.
std::string backend_text(const Backend& backend);

}  // namespace lpk::router
