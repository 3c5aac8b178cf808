#include "proxy/tunnel/listen.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/v6_only.hpp>
#include <cerrno>

namespace lpk::tunnel {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

std::string endpoint_text(const tcp::endpoint& endpoint) {
  auto address = endpoint.address().to_string();
  if (endpoint.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(endpoint.port());
}

std::string describe_bind_error(const tcp::endpoint& endpoint, const error_code& ec,
                                const BindHints& hints) {
  auto prefix = "cannot listen on " + endpoint_text(endpoint) + ": ";
  if (ec == asio::error::address_in_use) {
    return prefix + "the port is in use (ss -ltnp 'sport = :" + std::to_string(endpoint.port()) +
           "' shows who holds it); " + hints.in_use;
  }
  if (ec == asio::error::access_denied || ec == asio::error::no_permission) {
    return prefix + "ports below 1024 need privilege; " + hints.privileged;
  }
  if (ec == boost::system::errc::address_not_available) {
    return prefix + "the address is not on this machine; " + hints.not_here;
  }
  return prefix + ec.message();
}

Result<tcp::acceptor> open_listener(const asio::any_io_executor& executor,
                                    const tcp::endpoint& endpoint, const BindHints& hints) {
  tcp::acceptor acceptor(executor);
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  // "::" means every address, IPv4 ones too (dual stack), whatever net.ipv6.bindv6only says.
  if (!ec && endpoint.address().is_v6() && endpoint.address().is_unspecified()) {
    acceptor.set_option(asio::ip::v6_only(false), ec);
  }
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Problem{ec, describe_bind_error(endpoint, ec, hints)};
  return acceptor;
}

bool out_of_descriptors(const error_code& ec) {
  return ec == asio::error::no_descriptors ||
         (ec.category() == boost::system::system_category() && ec.value() == ENFILE);
}

DescriptorShedder::DescriptorShedder() : reserve_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

DescriptorShedder::~DescriptorShedder() {
  if (reserve_ >= 0) ::close(reserve_);
}

std::size_t DescriptorShedder::shed(tcp::acceptor& acceptor, const std::string& what) {
  std::size_t count = 0;
  const int listener = acceptor.native_handle();
  for (;;) {
    pollfd pending{listener, POLLIN, 0};
    if (::poll(&pending, 1, 0) != 1 || !(pending.revents & POLLIN)) break;  // backlog empty
    if (reserve_ >= 0) ::close(reserve_);
    reserve_ = -1;
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      linger reset{1, 0};  // RST, not FIN: the client learns at once that nobody will serve it
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      ::close(fd);
      ++count;
    }
    reserve_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || reserve_ < 0) break;  // another thread took the room, or none was made
  }
  report(what, count);
  return count;
}

void DescriptorShedder::report(const std::string& what, std::size_t count) {
  unreported_ += count;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_report_ < std::chrono::seconds(5)) return;
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  spdlog::warn("out of file descriptors (limit {}): refused {} connection(s) for {} since the "
               "last report; raise the limit (ulimit -n) or close connections",
               static_cast<unsigned long long>(limit.rlim_cur), unreported_, what);
  unreported_ = 0;
  last_report_ = now;
}

}  // namespace lpk::tunnel
