#pragma once
// The router's admin port: GET /healthz (200 once routes are known, else 503: the readiness
// probe) and GET /routes (the route table and counters as JSON, docs/router.md). One request
// per connection.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "agent/router/detail/shared.hpp"

namespace lpk::router::detail {

/// The status line and body the admin port answers `method` `target` with.
struct AdminAnswer {
  std::string status;
  std::string content_type;
  std::string body;
};
AdminAnswer admin_answer(const Shared& shared, std::string_view method, std::string_view target);

boost::asio::awaitable<void> serve_admin(std::shared_ptr<Shared> shared,
                                         boost::asio::ip::tcp::socket socket);

}  // namespace lpk::router::detail
