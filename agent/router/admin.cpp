#include "agent/router/detail/admin.hpp"

#include <fmt/format.h>

#include <boost/asio/write.hpp>

#include "agent/coro.hpp"
#include "agent/router/detail/byte_buffer.hpp"
#include "agent/router/http1.hpp"

namespace lpk::router::detail {

namespace asio = boost::asio;
using agent::kTuple;

AdminAnswer admin_answer(const Shared& shared, std::string_view method, std::string_view target) {
  auto path = target.substr(0, target.find('?'));
  if (method != "GET" && method != "HEAD") {
    return {"405 Method Not Allowed", "text/plain", "GET /healthz or GET /routes\n"};
  }
  if (path == "/healthz") {
    return shared.table.known() ? AdminAnswer{"200 OK", "text/plain", "ok\n"}
                                : AdminAnswer{"503 Service Unavailable", "text/plain",
                                              "routes not known yet\n"};
  }
  if (path == "/routes") {
    auto doc = shared.table.describe(shared.options.service);
    doc["opaque_connections"] = shared.opaque_connections;
    doc["h2_connections"] = shared.h2_connections;
    return {"200 OK", "application/json", doc.dump() + "\n"};
  }
  return {"404 Not Found", "text/plain", "GET /healthz or GET /routes\n"};
}

asio::awaitable<void> serve_admin(std::shared_ptr<Shared> shared, asio::ip::tcp::socket socket) {
  ByteBuffer in(kMaxHeadSize);
  RequestHead head;
  ParseStatus status;
  while ((status = parse_request_head(in.data(), head)) == ParseStatus::need_more && !in.full()) {
    auto [ec, n] = co_await socket.async_read_some(in.prepare(), kTuple);
    if (ec) co_return;
    in.commit(n);
  }
  AdminAnswer answer{"400 Bad Request", "text/plain", "malformed request\n"};
  const bool complete = status == ParseStatus::complete;
  if (complete) answer = admin_answer(*shared, head.method, head.target);
  auto text = fmt::format(
      "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
      answer.status, answer.content_type, answer.body.size(),
      complete && head.method == "HEAD" ? "" : answer.body);
  co_await asio::async_write(socket, asio::buffer(text), kTuple);
  boost::system::error_code ec;
  socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

}  // namespace lpk::router::detail
