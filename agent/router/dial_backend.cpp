#include "agent/router/detail/dial_backend.hpp"

#include <vector>

#include "proxy/tunnel/dial.hpp"
#include "proxy/tunnel/listen.hpp"

namespace lpk::router::detail {

boost::asio::awaitable<std::optional<boost::asio::ip::tcp::socket>> dial_backend(
    std::optional<boost::asio::ip::tcp::endpoint> to, const PortSpec& port,
    std::chrono::milliseconds timeout, std::string& why) {
  tunnel::DialResult dialled;
  std::string target;
  if (to) {
    target = tunnel::endpoint_text(*to);
    std::vector<boost::asio::ip::tcp::endpoint> endpoints{*to};
    dialled = co_await tunnel::dial_tcp(endpoints, timeout);
  } else {
    tunnel::Target fallback;
    fallback.host = port.fallback_host;
    fallback.port = port.fallback_port;
    target = fallback.to_string();
    dialled = co_await tunnel::resolve_and_dial(fallback, timeout);
  }
  if (!dialled.socket) why = target + ": " + tunnel::describe(dialled.code, dialled.reason);
  co_return std::move(dialled.socket);
}

}  // namespace lpk::router::detail
