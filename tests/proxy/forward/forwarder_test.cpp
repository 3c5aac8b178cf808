// The proxy's listeners, bind errors, inbound dialer and reconnecting tunnel client, against
// an in-process agent (real Sessions over loopback TCP) and local servers.
#include "proxy/forward/forwarder.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "proxy/tunnel/error.hpp"
#include "proxy/tunnel/client.hpp"
#include "tests/proxy/tunnel/test_util.hpp"
#include "tests/one_line.hpp"

namespace lpk::proxy {
namespace {

using namespace lpk::tunnel::test;
using tunnel::Clock;
using tunnel::GoAwayCode;
using tunnel::OpenCode;
using tunnel::Session;
using tunnel::SessionOptions;
using tunnel::Target;

const auto kLoopback = asio::ip::make_address("127.0.0.1");

using lpk::test::one_line;

/// The forwarder with its streams carried by `tunnel`.
Forwarder forwarder_through(asio::io_context& io, tunnel::TunnelClient& tunnel) {
  return Forwarder(io.get_executor(),
                   [&tunnel](tcp::socket s, Target t) { tunnel.open(std::move(s), std::move(t)); });
}


TEST(BindError, PortInUseNamesTheFix) {
  asio::io_context io;
  tcp::acceptor holder(io, tcp::endpoint(kLoopback, 0));
  Forwarder forwarder(io.get_executor(), [](tcp::socket, Target) {});
  auto bound = forwarder.listen(holder.local_endpoint(), Target{Target::Kind::name, "x", 1});
  ASSERT_FALSE(bound);
  EXPECT_EQ(bound.error().code, asio::error::address_in_use) << bound.error().message;
  const auto& error = bound.error().message;
  EXPECT_TRUE(one_line(error)) << error;
  const auto port = std::to_string(holder.local_endpoint().port());
  EXPECT_NE(error.find("127.0.0.1:" + port), std::string::npos) << error;
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  EXPECT_NE(error.find("ss -ltnp 'sport = :" + port + "'"), std::string::npos) << error;
  EXPECT_NE(error.find("another port"), std::string::npos) << error;
}

TEST(BindError, PermissionDeniedNamesTheCapability) {
  const tcp::endpoint ep(asio::ip::make_address("127.77.0.5"), 80);
  for (auto ec : {error_code(asio::error::access_denied), error_code(asio::error::no_permission)}) {
    auto message = tunnel::describe_bind_error(ep, ec, kListenerHints);
    EXPECT_TRUE(one_line(message)) << message;
    EXPECT_NE(message.find("127.77.0.5:80"), std::string::npos) << message;
    EXPECT_NE(message.find("cap_net_bind_service"), std::string::npos) << message;
    EXPECT_NE(message.find("1024"), std::string::npos) << message;
  }
}

TEST(BindError, RealPermissionDeniedBelow1024) {
  int unprivileged_start = 1024;
  std::ifstream("/proc/sys/net/ipv4/ip_unprivileged_port_start") >> unprivileged_start;
  if (geteuid() == 0 || unprivileged_start <= 80) {
    GTEST_SKIP() << "binding port 80 is permitted here (running as root, or "
                    "ip_unprivileged_port_start <= 80), so EACCES cannot be produced";
  }
  asio::io_context io;
  Forwarder forwarder(io.get_executor(), [](tcp::socket, Target) {});
  auto bound = forwarder.listen({kLoopback, 80}, Target{Target::Kind::name, "x", 1});
  ASSERT_FALSE(bound);
  const auto& error = bound.error().message;
  EXPECT_NE(error.find("cap_net_bind_service"), std::string::npos) << error;
}

TEST(BindError, AddressNotOnThisMachine) {
  asio::io_context io;
  Forwarder forwarder(io.get_executor(), [](tcp::socket, Target) {});
  // TEST-NET-1: never assigned to this machine. Binding sends nothing.
  auto bound = forwarder.listen({asio::ip::make_address("192.0.2.1"), 0},
                                Target{Target::Kind::name, "x", 1});
  ASSERT_FALSE(bound);
  const auto& error = bound.error().message;
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("127.0.0.0/8"), std::string::npos) << error;
}

TEST(BindError, OtherErrorsSayWhatHappened) {
  auto message =
      tunnel::describe_bind_error({kLoopback, 5000}, asio::error::no_descriptors, kListenerHints);
  EXPECT_TRUE(one_line(message)) << message;
  EXPECT_NE(message.find(error_code(asio::error::no_descriptors).message()), std::string::npos);
}

TEST(Forwarder, CarriesConnectionsAndAFailedListenerDoesNotStopTheOthers) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    TestAgent agent(io.get_executor());
    auto tunnel_owner = std::make_shared<tunnel::TunnelClient>(io.get_executor(), agent.target(), tunnel::SessionOptions{}, nullptr);
    auto& tunnel = *tunnel_owner;
    int ups = 0;
    tunnel.on_up = [&](Session&) { ++ups; };
    auto forwarder = forwarder_through(io, tunnel);
    tcp::acceptor holder(io, tcp::endpoint(kLoopback, 0));
    EXPECT_FALSE(forwarder.listen(holder.local_endpoint(), server.target()));
    auto bound = forwarder.listen({kLoopback, 0}, server.target());
    CO_ASSERT_TRUE(bound) << bound.error().message;
    EXPECT_NE(bound->port(), 0) << "the actual port is reported";
    forwarder.start();
    // This connection arrives before the tunnel is up: it waits for it.
    tcp::socket early(io);
    co_await early.async_connect(*bound, asio::use_awaitable);
    co_await write_text(early, "early");
    tunnel.start();
    early.shutdown(tcp::socket::shutdown_send);
    auto [eec, got] = co_await read_all(early);
    EXPECT_EQ(got, "early") << eec.message();
    EXPECT_EQ(ups, 1);
    for (int i = 0; i < 3; ++i) {
      tcp::socket c(io);
      co_await c.async_connect(*bound, asio::use_awaitable);
      co_await write_text(c, "hello " + std::to_string(i));
      c.shutdown(tcp::socket::shutdown_send);
      auto [ec, back] = co_await read_all(c);
      EXPECT_EQ(back, "hello " + std::to_string(i)) << ec.message();
    }
    forwarder.stop();
    tcp::socket refused(io);
    auto [cec] = co_await refused.async_connect(*bound, kTuple);
    EXPECT_EQ(cec, asio::error::connection_refused) << "stop() closes the listeners";
    tunnel.stop();
    agent.stop();
  }());
}

TEST(LocalDialer, RoutesInboundStreamsToLocalPortsOnly) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    InboundRoutes routes;
    routes.add(std::to_string(server.port()) + ":80");
    LocalDialer dialer(routes, 2s);
    // (Named Targets: GCC 12 destroys brace-initialized temporaries in a co_await twice.)
    const Target port80{Target::Kind::inbound, "", 80}, port81{Target::Kind::inbound, "", 81},
        port22{Target::Kind::inbound, "", 22}, by_name{Target::Kind::name, "localhost", 1};
    auto r = co_await dialer.dial(port80);
    EXPECT_EQ(r.code, OpenCode::ok) << r.reason;
    EXPECT_TRUE(r.socket && r.socket->is_open());
    EXPECT_EQ(r.socket->remote_endpoint().port(), server.port());
    r = co_await dialer.dial(port81);
    EXPECT_EQ(r.code, OpenCode::refused);
    EXPECT_NE(r.reason.find("81"), std::string::npos) << r.reason;
    r = co_await dialer.dial(server.target());
    EXPECT_EQ(r.code, OpenCode::not_permitted) << "the agent cannot make the proxy dial out";
    r = co_await dialer.dial(by_name);
    EXPECT_EQ(r.code, OpenCode::not_permitted);
    // A catch-all route to a port where nothing listens.
    ClosedPort gone(io);
    InboundRoutes to_nothing;
    to_nothing.add(std::to_string(gone.port()));
    LocalDialer nothing(to_nothing, 2s);
    r = co_await nothing.dial(port22);
    EXPECT_EQ(r.code, OpenCode::refused) << r.reason;
  }());
}

}  // namespace
}  // namespace lpk::proxy
