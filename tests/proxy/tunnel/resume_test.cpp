// Sessions that lose their link and carry their streams on over a new one (docs/protocol.md §6):
// no byte lost or duplicated, opens lost with the link sent again, ends that happened while
// the link was down seen on both sides.
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "proxy/tunnel/session.hpp"
#include "tests/proxy/tunnel/test_util.hpp"

namespace lpk::tunnel {
namespace {

using namespace test;

// A proxy and an agent session whose link the test cuts (both ends see it end, as with a
// dropped port-forward) and replaces with a new link that resumes the session.
struct Resumable {
  std::shared_ptr<Session> proxy;
  std::shared_ptr<Session> agent;
  std::shared_ptr<Running> proxy_run;
  std::shared_ptr<Running> agent_run;
  SessionOptions proxy_options;
  SessionOptions agent_options;
  int proxy_fd = -1;

  asio::awaitable<tcp::socket> connect(Target target) {
    auto [client, local] = co_await socket_pair();
    proxy->open_stream(std::move(local), std::move(target));
    co_return std::move(client);
  }

  /// Cuts the link under both sessions and waits until both have let it go.
  asio::awaitable<void> cut() {
    ::shutdown(proxy_fd, SHUT_RDWR);
    EXPECT_TRUE(co_await proxy_run->ended.wait());
    EXPECT_TRUE(co_await agent_run->ended.wait());
  }

  /// A new link, a resumed hello on it, and both sessions running again.
  asio::awaitable<void> relink() {
    auto ex = co_await asio::this_coro::executor;
    auto [x, y] = co_await socket_pair();
    proxy_fd = x.native_handle();
    auto proxy_link = std::make_unique<TcpLink>(std::move(x));
    auto agent_link = std::make_unique<TcpLink>(std::move(y));
    std::function<bool(const Hello&)> holds = [this](const Hello& h) {
      return h.session_id == agent->id() && !agent->stopped();
    };
    auto [p, a] =
        co_await (Session::exchange_hellos(*proxy_link, proxy_options, proxy->id(), true) &&
                  Session::exchange_hellos(*agent_link, agent_options, {}, false, holds));
    if (!p || !a) throw std::runtime_error("the resumed hello failed");
    EXPECT_TRUE(p->peer.resume) << "the agent holds the session";
    proxy->attach(std::move(proxy_link));
    agent->attach(std::move(agent_link));
    proxy_run = start_running(ex, proxy);
    agent_run = start_running(ex, agent);
  }

  asio::awaitable<void> close() {
    proxy->stop();
    agent->stop();
    EXPECT_TRUE(co_await proxy_run->ended.wait());
    EXPECT_TRUE(co_await agent_run->ended.wait());
  }
};

asio::awaitable<Resumable> make_resumable(SessionOptions po, SessionOptions ao) {
  auto ex = co_await asio::this_coro::executor;
  auto dialer = std::make_shared<TestDialer>(ex);
  auto [x, y] = co_await socket_pair();
  po.role = Role::proxy;
  ao.role = Role::agent;
  Resumable r;
  r.proxy_options = po;
  r.agent_options = ao;
  r.proxy_fd = x.native_handle();
  auto [p, a] = co_await (
      Session::establish(std::make_unique<TcpLink>(std::move(x)), po, nullptr) &&
      Session::establish(std::make_unique<TcpLink>(std::move(y)), ao, dialer));
  if (!p || !a) throw std::runtime_error("handshake failed");
  r.proxy = *p;
  r.agent = *a;
  r.proxy_run = start_running(ex, r.proxy);
  r.agent_run = start_running(ex, r.agent);
  co_return r;
}

// A client whose stream through `r` to the echo server has carried one round trip.
asio::awaitable<tcp::socket> echoing_client(Resumable& r, Server& server) {
  auto client = co_await r.connect(server.target());
  EXPECT_FALSE(co_await write_text(client, "ping"));
  auto [ec, echoed] = co_await read_exactly(client, 4);
  EXPECT_EQ(echoed, "ping") << ec.message();
  co_return client;
}

// What a client sent and got back, filled by coroutines that run beside the test.
struct Transfer {
  std::string sent;
  std::string received;
  error_code write_error;
  error_code read_error;
  bool read_done = false;
};

asio::awaitable<void> write_all_of(tcp::socket& s, std::shared_ptr<Transfer> t) {
  for (std::size_t at = 0; at < t->sent.size(); at += 64 * 1024) {
    auto piece = std::string_view(t->sent).substr(at, 64 * 1024);
    if ((t->write_error = co_await write_text(s, piece))) co_return;
  }
  s.shutdown(tcp::socket::shutdown_send);
}

asio::awaitable<void> read_to_end(tcp::socket& s, std::shared_ptr<Transfer> t) {
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buffer), kTuple);
    t->received.append(buffer.data(), n);
    if (ec) {
      t->read_error = ec;
      break;
    }
  }
  t->read_done = true;
}

TEST(Resume, BulkBothWaysSurvivesCutsWithNoByteLostOrRepeated) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ex = io.get_executor();
    Server server(ex, echo);
    SessionOptions po, ao;
    auto r = co_await make_resumable(po, ao);
    CO_ASSERT_TRUE(r.proxy->resumable() && r.agent->resumable());
    auto client = co_await r.connect(server.target());
    auto t = std::make_shared<Transfer>();
    t->sent = pattern(24 << 20, 3);
    asio::co_spawn(ex, write_all_of(client, t), asio::detached);
    asio::co_spawn(ex, read_to_end(client, t), asio::detached);
    // Cut at several points of the transfer, twice in a row once.
    for (std::size_t mark : {1u << 20, 6u << 20, 6u << 20, 15u << 20}) {
      CO_ASSERT_TRUE(co_await eventually([&] { return t->received.size() >= mark; }, 15s));
      co_await r.cut();
      EXPECT_TRUE(r.proxy->detached());
      EXPECT_TRUE(r.agent->detached());
      EXPECT_FALSE(r.proxy->accepting_streams()) << "new streams wait for the resume";
      co_await r.relink();
    }
    CO_ASSERT_TRUE(co_await eventually([&] { return t->read_done; }, 15s));
    EXPECT_EQ(t->read_error, asio::error::eof) << t->read_error.message();
    EXPECT_FALSE(t->write_error) << t->write_error.message();
    EXPECT_EQ(t->received.size(), t->sent.size());
    EXPECT_TRUE(t->received == t->sent) << "the bytes came back changed";
    EXPECT_EQ(r.proxy->stats().resumes, 4u);
    EXPECT_EQ(r.agent->stats().resumes, 4u);
    EXPECT_EQ(r.proxy->stats().streams_resumed, 4u);
    EXPECT_TRUE(co_await eventually([&] {
      return r.proxy->stats().streams_active == 0 && r.agent->stats().streams_active == 0;
    })) << "the stream ends on both sides once each has the other's FIN";
    EXPECT_EQ(r.proxy->stats().bytes_held, 0u);
    co_await r.close();
  }(), 60s);
}

TEST(Resume, OpenLostWithTheLinkIsSentAgain) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ex = io.get_executor();
    Server server(ex, echo);
    SessionOptions po, ao;
    auto r = co_await make_resumable(po, ao);
    auto client = co_await r.connect(server.target());
    // Cut before the writer could send the OPEN (nothing ran since open_stream): the agent
    // never hears of the stream.
    ::shutdown(r.proxy_fd, SHUT_RDWR);
    co_await r.cut();
    EXPECT_FALSE(co_await write_text(client, "hello"));
    EXPECT_EQ(r.agent->stats().streams_opened, 0u);
    co_await r.relink();
    EXPECT_FALSE(co_await write_text(client, " again"));
    client.shutdown(tcp::socket::shutdown_send);
    auto [ec, got] = co_await read_all(client);
    EXPECT_EQ(got, "hello again") << ec.message();
    EXPECT_EQ(r.agent->stats().streams_opened, 1u);
    co_await r.close();
  }());
}

// The server answers and closes while the link is down; the client still gets all of it.
TEST(Resume, StreamThatEndsWhileTheLinkIsDownDeliversEverything) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ex = io.get_executor();
    const auto response = pattern(3 << 20, 9);
    Server server(ex, [&](tcp::socket s) -> asio::awaitable<void> {
      auto [ec, request] = co_await read_all(s);
      co_await write_text(s, response);
      s.shutdown(tcp::socket::shutdown_send);
    });
    SessionOptions po, ao;
    auto r = co_await make_resumable(po, ao);
    auto client = co_await r.connect(server.target());
    EXPECT_FALSE(co_await write_text(client, "GET"));
    client.shutdown(tcp::socket::shutdown_send);
    CO_ASSERT_TRUE(co_await eventually([&] { return r.agent->stats().bytes_sent > 1 << 20; }));
    co_await r.cut();
    // Meanwhile the server finishes writing into the agent's side.
    co_await asio::steady_timer(ex, 100ms).async_wait(kTuple);
    co_await r.relink();
    auto [ec, got] = co_await read_all(client);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
    EXPECT_EQ(got.size(), response.size());
    EXPECT_TRUE(got == response);
    EXPECT_TRUE(co_await eventually([&] {
      return r.proxy->stats().streams_active == 0 && r.agent->stats().streams_active == 0;
    }));
    co_await r.close();
  }());
}

// A stream reset on one side while the link is down is reset on the other after the resume.
TEST(Resume, StreamResetWhileTheLinkIsDownIsResetOnTheOtherSide) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ex = io.get_executor();
    Server server(ex, echo);
    SessionOptions po, ao;
    auto r = co_await make_resumable(po, ao);
    auto client = co_await echoing_client(r, server);
    co_await r.cut();
    // The client goes away abortively while the link is down.
    client.set_option(asio::socket_base::linger(true, 0));
    client.close();
    CO_ASSERT_TRUE(co_await eventually([&] { return r.proxy->stats().streams_active == 0; }));
    co_await r.relink();
    EXPECT_TRUE(co_await eventually([&] { return r.agent->stats().streams_active == 0; }))
        << "the agent learns at the resume that the stream is gone";
    EXPECT_EQ(r.agent->stats().streams_ended_while_down, 1u);
    co_await r.close();
  }());
}

TEST(Resume, WithoutTheCapabilityALostLinkEndsTheSession) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ex = io.get_executor();
    Server server(ex, echo);
    SessionOptions po, ao;
    ao.resume = false;  // an agent from before resumption
    auto r = co_await make_resumable(po, ao);
    EXPECT_FALSE(r.proxy->resumable());
    auto client = co_await echoing_client(r, server);
    co_await r.cut();
    EXPECT_TRUE(r.proxy->stopped());
    EXPECT_TRUE(r.agent->stopped());
    auto [ec, rest] = co_await read_all(client);
    EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::eof) << ec.message();
  }());
}

}  // namespace
}  // namespace lpk::tunnel
