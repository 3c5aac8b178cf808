// The proxy's reconnecting tunnel client against an in-process agent (real Sessions over
// loopback TCP): the same session id after a drop, fatal ends, connections waiting for a tunnel.
#include "proxy/tunnel/client.hpp"

#include <gtest/gtest.h>

#include "tests/proxy/tunnel/test_util.hpp"
#include "tests/one_line.hpp"

namespace lpk::tunnel {
namespace {

using namespace lpk::tunnel::test;
using namespace std::chrono_literals;

const auto kLoopback = asio::ip::make_address("127.0.0.1");

using lpk::test::one_line;

TEST(TunnelClient, ReconnectsWithTheSameSessionIdAfterTheLinkDrops) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    TestAgent agent(io.get_executor());
    auto tunnel_owner = std::make_shared<TunnelClient>(io.get_executor(), agent.target(), SessionOptions{}, nullptr);
    auto& tunnel = *tunnel_owner;
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
    TestAgent agent(io.get_executor());
    auto tunnel_owner = std::make_shared<TunnelClient>(io.get_executor(), agent.target(), SessionOptions{}, nullptr);
    auto& tunnel = *tunnel_owner;
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
    TestAgent agent(io.get_executor(), agent_options);
    auto tunnel_owner = std::make_shared<TunnelClient>(io.get_executor(), agent.target(), SessionOptions{}, nullptr);
    auto& tunnel = *tunnel_owner;
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
    TestAgent agent(io.get_executor(), agent_options);
    SessionOptions proxy_options;
    proxy_options.secret = "the proxy's";
    auto tunnel_owner = std::make_shared<TunnelClient>(io.get_executor(), agent.target(), proxy_options, nullptr);
    auto& tunnel = *tunnel_owner;
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
    ClosedPort gone(io);
    const Target nowhere = gone.target();
    auto tunnel_owner = std::make_shared<TunnelClient>(io.get_executor(), nowhere, SessionOptions{}, nullptr);
    auto& tunnel = *tunnel_owner;
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

}  // namespace
}  // namespace lpk::tunnel
