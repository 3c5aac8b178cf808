// The proxy's listeners, bind errors, inbound dialer and reconnecting tunnel client, against
// an in-process agent (real Sessions over loopback TCP) and local servers.
#include "proxy/forwarder.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "proxy/tunnel/error.hpp"
#include "proxy/tunnel_client.hpp"
#include "tests/tunnel/test_util.hpp"

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

/// An agent end in the test: accepts tunnel links, runs agent Sessions that dial through a
/// TestDialer.
class Agent {
 public:
  Agent(asio::any_io_executor ex, SessionOptions options = {})
      : acceptor_(std::make_shared<tcp::acceptor>(ex, tcp::endpoint(kLoopback, 0))),
        state_(std::make_shared<State>(ex)) {
    options.role = tunnel::Role::agent;
    asio::co_spawn(ex, accept_loop(acceptor_, state_, options), asio::detached);
  }
  ~Agent() { stop(); }
  Target target() const {
    return {Target::Kind::ipv4, "127.0.0.1", acceptor_->local_endpoint().port()};
  }
  std::vector<std::shared_ptr<Session>>& sessions() { return state_->sessions; }
  int refused() const { return state_->refused; }
  void stop() {
    error_code ec;
    acceptor_->close(ec);
    for (auto& s : state_->sessions) s->stop();
  }

 private:
  struct State {
    explicit State(asio::any_io_executor ex) : dialer(std::make_shared<TestDialer>(ex)) {}
    std::shared_ptr<TestDialer> dialer;
    std::vector<std::shared_ptr<Session>> sessions;
    int refused = 0;
  };
  static asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                           std::shared_ptr<State> state, SessionOptions options) {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(kTuple);
      if (ec) co_return;
      auto s = co_await Session::establish(std::make_unique<tunnel::TcpLink>(std::move(socket)),
                                           options, state->dialer);
      if (!s) {
        ++state->refused;
        continue;
      }
      state->sessions.push_back(*s);
      asio::co_spawn(acceptor->get_executor(), (*s)->run(), asio::detached);
    }
  }
  std::shared_ptr<tcp::acceptor> acceptor_;
  std::shared_ptr<State> state_;
};

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

TEST(BindError, PortInUseNamesTheFix) {
  asio::io_context io;
  tcp::acceptor holder(io, tcp::endpoint(kLoopback, 0));
  TunnelClient tunnel(io.get_executor(), Target{Target::Kind::ipv4, "127.0.0.1", 1}, {}, nullptr);
  Forwarder forwarder(io.get_executor(), tunnel);
  std::string error;
  auto bound = forwarder.listen(holder.local_endpoint(), Target{Target::Kind::name, "x", 1}, error);
  ASSERT_FALSE(bound);
  EXPECT_EQ(bound.error(), asio::error::address_in_use) << bound.error().message();
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
    auto message = describe_bind_error(ep, ec);
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
  TunnelClient tunnel(io.get_executor(), Target{Target::Kind::ipv4, "127.0.0.1", 1}, {}, nullptr);
  Forwarder forwarder(io.get_executor(), tunnel);
  std::string error;
  auto bound = forwarder.listen({kLoopback, 80}, Target{Target::Kind::name, "x", 1}, error);
  ASSERT_FALSE(bound);
  EXPECT_NE(error.find("cap_net_bind_service"), std::string::npos) << error;
}

TEST(BindError, AddressNotOnThisMachine) {
  asio::io_context io;
  TunnelClient tunnel(io.get_executor(), Target{Target::Kind::ipv4, "127.0.0.1", 1}, {}, nullptr);
  Forwarder forwarder(io.get_executor(), tunnel);
  std::string error;
  // TEST-NET-1: never assigned to this machine. Binding sends nothing.
  auto bound = forwarder.listen({asio::ip::make_address("192.0.2.1"), 0},
                                Target{Target::Kind::name, "x", 1}, error);
  ASSERT_FALSE(bound);
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("127.0.0.0/8"), std::string::npos) << error;
}

TEST(BindError, OtherErrorsSayWhatHappened) {
  auto message = describe_bind_error({kLoopback, 5000}, asio::error::no_descriptors);
  EXPECT_TRUE(one_line(message)) << message;
  EXPECT_NE(message.find(error_code(asio::error::no_descriptors).message()), std::string::npos);
}

TEST(Forwarder, CarriesConnectionsAndAFailedListenerDoesNotStopTheOthers) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    Agent agent(io.get_executor());
    TunnelClient tunnel(io.get_executor(), agent.target(), {}, nullptr);
    int ups = 0;
    tunnel.on_up = [&](Session&) { ++ups; };
    Forwarder forwarder(io.get_executor(), tunnel);
    tcp::acceptor holder(io, tcp::endpoint(kLoopback, 0));
    std::string error;
    EXPECT_FALSE(forwarder.listen(holder.local_endpoint(), server.target(), error));
    auto bound = forwarder.listen({kLoopback, 0}, server.target(), error);
    CO_ASSERT_TRUE(bound) << error;
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

TEST(TunnelClient, ReconnectsWithTheSameSessionIdAfterTheLinkDrops) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    Agent agent(io.get_executor());
    TunnelClient tunnel(io.get_executor(), agent.target(), {}, nullptr);
    int ups = 0;
    bool fatal = false;
    tunnel.on_up = [&](Session&) { ++ups; };
    tunnel.on_fatal = [&](const std::string&) { fatal = true; };
    tunnel.start();
    CO_ASSERT_TRUE(co_await eventually([&] { return ups == 1; }));
    agent.sessions().at(0)->stop(GoAwayCode::normal, "agent restarting");
    CO_ASSERT_TRUE(co_await eventually([&] { return ups == 2; }));
    EXPECT_FALSE(fatal);
    CO_ASSERT_EQ(agent.sessions().size(), 2u);
    EXPECT_EQ(agent.sessions()[1]->id(), tunnel.session_id());
    EXPECT_EQ(agent.sessions()[0]->id(), tunnel.session_id());
    EXPECT_EQ(tunnel.session_id_text().size(), 8u);
    // Streams go over the new link.
    auto [client, local] = co_await socket_pair();
    tunnel.open(std::move(local), server.target());
    co_await write_text(client, "again");
    client.shutdown(tcp::socket::shutdown_send);
    auto [ec, got] = co_await read_all(client);
    EXPECT_EQ(got, "again") << ec.message();
    tunnel.stop();
    tunnel.stop();
    agent.stop();
  }());
}

TEST(TunnelClient, ReplacedByAnotherProxyIsFatal) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Agent agent(io.get_executor());
    TunnelClient tunnel(io.get_executor(), agent.target(), {}, nullptr);
    int ups = 0;
    std::string fatal;
    tunnel.on_up = [&](Session&) { ++ups; };
    tunnel.on_fatal = [&](const std::string& why) { fatal = why; };
    tunnel.start();
    CO_ASSERT_TRUE(co_await eventually([&] { return ups == 1; }));
    agent.sessions().at(0)->stop(GoAwayCode::replaced, "a newer proxy connected");
    CO_ASSERT_TRUE(co_await eventually([&] { return !fatal.empty(); }));
    EXPECT_NE(fatal.find("replaced"), std::string::npos) << fatal;
    EXPECT_NE(fatal.find(agent.target().to_string()), std::string::npos) << fatal;
    EXPECT_TRUE(one_line(fatal)) << fatal;
    EXPECT_EQ(ups, 1) << "no reconnect after being replaced";
    EXPECT_EQ(agent.sessions().size(), 1u);
    agent.stop();
  }());
}

TEST(TunnelClient, AgentRefusingTheSecretIsFatal) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    SessionOptions agent_options;
    agent_options.secret = "agent only";
    Agent agent(io.get_executor(), agent_options);
    TunnelClient tunnel(io.get_executor(), agent.target(), {}, nullptr);
    std::string fatal;
    tunnel.on_fatal = [&](const std::string& why) { fatal = why; };
    tunnel.start();
    CO_ASSERT_TRUE(co_await eventually([&] { return !fatal.empty(); }));
    EXPECT_TRUE(fatal.find("secret") != std::string::npos ||
                fatal.find("authentication") != std::string::npos)
        << fatal;
    EXPECT_EQ(agent.refused(), 1);
    agent.stop();
  }());
}

// Both ends have a secret, but not the same one: a configuration error that retrying cannot
// fix, like the case above. The proxy should give up with a message, not retry forever.
TEST(TunnelClient, MismatchedSecretIsFatal) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    SessionOptions agent_options;
    agent_options.secret = "the agent's";
    Agent agent(io.get_executor(), agent_options);
    SessionOptions proxy_options;
    proxy_options.secret = "the proxy's";
    TunnelClient tunnel(io.get_executor(), agent.target(), proxy_options, nullptr);
    std::string fatal;
    tunnel.on_fatal = [&](const std::string& why) { fatal = why; };
    tunnel.start();
    EXPECT_TRUE(co_await eventually([&] { return !fatal.empty(); }, 3s))
        << "after " << agent.refused() << " refused handshakes the client is still retrying";
    EXPECT_TRUE(fatal.find("secret") != std::string::npos ||
                fatal.find("authentication") != std::string::npos)
        << fatal;
    tunnel.stop();
    agent.stop();
  }());
}

TEST(TunnelClient, ConnectionWaitingForAnAbsentTunnelIsClosed) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    tcp::acceptor gone(io, tcp::endpoint(kLoopback, 0));
    const Target nowhere{Target::Kind::ipv4, "127.0.0.1", gone.local_endpoint().port()};
    gone.close();
    TunnelClient tunnel(io.get_executor(), nowhere, {}, nullptr);
    tunnel.wait_for_tunnel = 200ms;
    tunnel.start();
    auto [client, local] = co_await socket_pair();
    const auto started = Clock::now();
    tunnel.open(std::move(local), Target{Target::Kind::name, "svc", 80});
    auto [ec, got] = co_await read_all(client);
    EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::eof) << ec.message();
    EXPECT_GE(Clock::now() - started, 150ms);
    EXPECT_LT(Clock::now() - started, 3s);
    tunnel.stop();
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
    tcp::acceptor gone(io, tcp::endpoint(kLoopback, 0));
    InboundRoutes to_nothing;
    to_nothing.add(std::to_string(gone.local_endpoint().port()));
    gone.close();
    LocalDialer nothing(to_nothing, 2s);
    r = co_await nothing.dial(port22);
    EXPECT_EQ(r.code, OpenCode::refused) << r.reason;
  }());
}

}  // namespace
}  // namespace lpk::proxy
