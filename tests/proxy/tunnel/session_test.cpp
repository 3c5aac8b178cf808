// Two real Sessions over a loopback TCP link in one io_context: the proxy side opens streams
// for local client sockets, the agent side dials local servers through a TestDialer.
#include "proxy/tunnel/session.hpp"

#include <gtest/gtest.h>

#include "proxy/tunnel/error.hpp"
#include "tests/proxy/tunnel/test_util.hpp"

namespace lpk::tunnel {
namespace {

using namespace test;

bool is_abrupt_or_clean_end(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

TEST(Session, StreamCarriesBytesBothWays) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    auto t = co_await make_tunnel();
    auto client = co_await t.connect(server.target());
    // Interactive: the echo comes back before the client ends its side.
    EXPECT_FALSE(co_await write_text(client, "ping"));
    auto [ec, got] = co_await read_exactly(client, 4);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, "ping");
    const auto payload = pattern(300 * 1024);
    EXPECT_FALSE(co_await write_text(client, payload));
    client.shutdown(tcp::socket::shutdown_send);
    auto [end, rest] = co_await read_all(client);
    EXPECT_EQ(end, asio::error::eof) << end.message();
    EXPECT_TRUE(rest == payload) << rest.size() << " bytes back of " << payload.size();
    EXPECT_EQ(t.proxy->stats().streams_opened, 1u);
    EXPECT_EQ(t.agent->stats().streams_opened, 1u);
    EXPECT_GT(t.proxy->stats().bytes_sent, payload.size());
    EXPECT_GT(t.agent->stats().bytes_received, payload.size());
    EXPECT_TRUE(co_await eventually([&] {
      return t.proxy->stats().streams_active == 0 && t.agent->stats().streams_active == 0;
    })) << "a stream closed in both directions is forgotten on both sides";
    EXPECT_EQ(t.dialer->targets.at(0), server.target());
    co_await t.close();
  }());
}

// The server answers only after the client's end of stream, then closes.
TEST(Session, ClientHalfCloseStillGetsTheWholeResponse) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    const auto response = pattern(3 << 20, 7);
    std::string request_seen;
    Server server(io.get_executor(), [&](tcp::socket s) -> asio::awaitable<void> {
      auto [ec, request] = co_await read_all(s);
      request_seen = ec == asio::error::eof ? request : "read failed: " + ec.message();
      co_await write_text(s, response);
      s.shutdown(tcp::socket::shutdown_send);
      co_await s.async_wait(tcp::socket::wait_read, kTuple);  // until the stream is closed
    });
    auto t = co_await make_tunnel();
    auto client = co_await t.connect(server.target());
    EXPECT_FALSE(co_await write_text(client, "GET /big\n"));
    client.shutdown(tcp::socket::shutdown_send);
    auto [ec, got] = co_await read_all(client);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
    EXPECT_EQ(got.size(), response.size());
    EXPECT_TRUE(got == response);
    EXPECT_EQ(request_seen, "GET /big\n");
    co_await t.close();
  }());
}

// The far side ends its direction first; the client's bytes still reach it afterwards.
TEST(Session, ServerHalfCloseStillGetsTheClientsBytes) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    const auto banner = pattern(200 * 1024, 3);
    const auto upload = pattern(1 << 20, 4);
    std::string received;
    error_code received_end;
    Event done(io.get_executor());
    Server server(io.get_executor(), [&](tcp::socket s) -> asio::awaitable<void> {
      co_await write_text(s, banner);
      s.shutdown(tcp::socket::shutdown_send);
      std::tie(received_end, received) = co_await read_all(s);
      done.set();
    });
    auto t = co_await make_tunnel();
    auto client = co_await t.connect(server.target());
    auto [ec, got] = co_await read_all(client);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
    EXPECT_TRUE(got == banner) << got.size();
    EXPECT_FALSE(co_await write_text(client, upload)) << "the client can still send";
    client.shutdown(tcp::socket::shutdown_send);
    EXPECT_TRUE(co_await done.wait());
    EXPECT_EQ(received_end, asio::error::eof) << received_end.message();
    EXPECT_TRUE(received == upload) << received.size() << " of " << upload.size();
    EXPECT_TRUE(co_await eventually([&] {
      return t.proxy->stats().streams_active == 0 && t.agent->stats().streams_active == 0;
    }));
    co_await t.close();
  }());
}

TEST(Session, ClientResetReachesTheFarSocket) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Event first_bytes(io.get_executor());
    Event ended(io.get_executor());
    error_code far_end;
    Server server(io.get_executor(), [&](tcp::socket s) -> asio::awaitable<void> {
      auto [ec, hi] = co_await read_exactly(s, 2);
      first_bytes.set();
      std::string rest;
      std::tie(far_end, rest) = co_await read_all(s);
      ended.set();
    });
    auto t = co_await make_tunnel();
    auto client = co_await t.connect(server.target());
    co_await write_text(client, "hi");
    EXPECT_TRUE(co_await first_bytes.wait());
    client.set_option(asio::socket_base::linger(true, 0));
    client.close();  // RST
    EXPECT_TRUE(co_await ended.wait(5s));
    EXPECT_EQ(far_end, asio::error::connection_reset) << far_end.message();
    EXPECT_TRUE(co_await eventually([&] { return t.agent->stats().streams_active == 0; }));
    EXPECT_FALSE(t.proxy->stopped());
    co_await t.close();
  }());
}

TEST(Session, FarResetReachesTheClient) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), [&](tcp::socket s) -> asio::awaitable<void> {
      co_await read_exactly(s, 2);
      co_await write_text(s, "partial answer");
      s.set_option(asio::socket_base::linger(true, 0));
      s.close();  // RST
    });
    auto t = co_await make_tunnel();
    auto client = co_await t.connect(server.target());
    co_await write_text(client, "hi");
    auto [ec, got] = co_await read_all(client);
    EXPECT_EQ(ec, asio::error::connection_reset)
        << "a reset far end must look like a reset, not a clean end: " << ec.message();
    EXPECT_TRUE(co_await eventually([&] { return t.proxy->stats().streams_active == 0; }));
    EXPECT_FALSE(t.proxy->stopped());
    co_await t.close();
  }());
}

TEST(Session, RefusedDialClosesTheClientPromptlyAndTheSessionStaysUsable) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    auto t = co_await make_tunnel();
    ClosedPort gone(io);
    const Target nowhere = gone.target();
    for (int i = 0; i < 3; ++i) {
      const auto started = Clock::now();
      auto client = co_await t.connect(nowhere);
      co_await write_text(client, "sent before the refusal arrives");
      auto [ec, got] = co_await read_all(client);
      EXPECT_TRUE(is_abrupt_or_clean_end(ec)) << ec.message();
      EXPECT_TRUE(got.empty());
      EXPECT_LT(Clock::now() - started, 2s);
    }
    EXPECT_FALSE(t.proxy->stopped());
    EXPECT_FALSE(t.agent->stopped());
    auto client = co_await t.connect(server.target());
    co_await write_text(client, "still works");
    client.shutdown(tcp::socket::shutdown_send);
    auto [ec, got] = co_await read_all(client);
    EXPECT_EQ(got, "still works");
    EXPECT_EQ(t.dialer->dials, 4);
    co_await t.close();
  }());
}

// One client stops reading while the far side keeps sending; another stream moves 8 MiB.
TEST(Session, StalledReaderDoesNotStopAnotherStream) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    const auto chunk = pattern(64 * 1024, 9);
    std::uint64_t firehose_sent = 0;
    Server firehose(io.get_executor(), [&](tcp::socket s) -> asio::awaitable<void> {
      for (;;) {
        auto [ec, n] = co_await asio::async_write(s, asio::buffer(chunk), kTuple);
        if (ec) co_return;
        firehose_sent += n;
      }
    });
    const auto bulk = pattern(8 << 20, 10);
    Server source(io.get_executor(), [&](tcp::socket s) -> asio::awaitable<void> {
      co_await write_text(s, bulk);
      s.shutdown(tcp::socket::shutdown_send);
      co_await s.async_wait(tcp::socket::wait_read, kTuple);
    });
    auto t = co_await make_tunnel();
    auto stalled = co_await t.connect(firehose.target());
    // Wait until the stalled stream has filled everything it may (its window and buffers).
    std::uint64_t last = ~0ull;
    EXPECT_TRUE(co_await eventually([&] {
      bool still = firehose_sent > 0 && firehose_sent == last;
      last = firehose_sent;
      return still;
    }, 10s));
    auto fast = co_await t.connect(source.target());
    auto [ec, got] = co_await read_all(fast);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
    EXPECT_EQ(got.size(), bulk.size());
    EXPECT_TRUE(got == bulk);
    // The stalled stream is alive and resumes where it stopped.
    auto [sec, first] = co_await read_exactly(stalled, chunk.size());
    EXPECT_FALSE(sec) << sec.message();
    EXPECT_TRUE(first == chunk);
    co_await t.close();
  }(), 60s);
}

TEST(Session, ExcessStreamsAreRefusedAndTheOthersKeepWorking) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    SessionOptions ao;
    ao.max_streams = 2;
    SessionOptions po;
    auto t = co_await make_tunnel(po, ao);
    std::vector<tcp::socket> clients;
    for (int i = 0; i < 2; ++i) {
      clients.push_back(co_await t.connect(server.target()));
      co_await write_text(clients.back(), "x");
      auto [ec, got] = co_await read_exactly(clients.back(), 1);
      EXPECT_EQ(got, "x");
    }
    auto third = co_await t.connect(server.target());
    auto [ec, got] = co_await read_all(third);
    EXPECT_TRUE(is_abrupt_or_clean_end(ec)) << ec.message();
    // The first two still work, and closing one frees a slot.
    co_await write_text(clients[0], "y");
    auto [ec0, y] = co_await read_exactly(clients[0], 1);
    EXPECT_EQ(y, "y");
    clients[1].shutdown(tcp::socket::shutdown_send);
    co_await read_all(clients[1]);
    EXPECT_TRUE(co_await eventually([&] { return t.proxy->stats().streams_active == 1; }));
    auto fourth = co_await t.connect(server.target());
    co_await write_text(fourth, "z");
    auto [ec4, z] = co_await read_exactly(fourth, 1);
    EXPECT_EQ(z, "z") << ec4.message();
    co_await t.close();
  }());
}

TEST(Session, PingMeasuresRoundTrip) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    SessionOptions o;  // each end pings once at start, which is enough for an RTT
    auto t = co_await make_tunnel(o, o);
    EXPECT_TRUE(co_await eventually([&] {
      return t.proxy->stats().rtt.count() > 0 && t.agent->stats().rtt.count() > 0;
    }));
    EXPECT_LT(t.proxy->stats().rtt, 1s);
    co_await t.close();
  }());
}

TEST(Session, StopIsIdempotentAndClosesEveryStream) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    int far_ended = 0;
    Event all_far_ended(io.get_executor());
    Server server(io.get_executor(), [&](tcp::socket s) -> asio::awaitable<void> {
      std::array<char, 1024> buf;
      for (;;) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kTuple);
        if (ec) break;
        co_await asio::async_write(s, asio::buffer(buf.data(), n), kTuple);
      }
      if (++far_ended == 3) all_far_ended.set();
    });
    auto t = co_await make_tunnel();
    std::vector<tcp::socket> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(co_await t.connect(server.target()));
      co_await write_text(clients.back(), "a");
      co_await read_exactly(clients.back(), 1);
    }
    t.proxy->stop();
    t.proxy->stop(GoAwayCode::internal, "a second stop changes nothing");
    EXPECT_TRUE(t.proxy->stopped());
    EXPECT_FALSE(t.proxy->accepting_streams());
    for (auto& c : clients) {
      auto [ec, got] = co_await read_all(c);
      EXPECT_TRUE(is_abrupt_or_clean_end(ec)) << ec.message();
    }
    EXPECT_TRUE(co_await all_far_ended.wait()) << "the agent closes the far sockets too";
    EXPECT_TRUE(co_await t.proxy_run->ended.wait());
    EXPECT_TRUE(co_await t.agent_run->ended.wait());
    EXPECT_EQ(t.proxy_run->reason, make_error_code(Error::session_closed))
        << t.proxy_run->reason.message();
    CO_ASSERT_TRUE(t.agent->go_away_code().has_value());
    EXPECT_EQ(*t.agent->go_away_code(), GoAwayCode::normal) << "the first stop's code wins";
    EXPECT_EQ(t.proxy->stats().streams_active, 0u);
    EXPECT_EQ(t.agent->stats().streams_active, 0u);
    t.proxy->stop();
    // A connection offered after the end is closed at once.
    auto late = co_await t.connect(server.target());
    auto [ec, got] = co_await read_all(late);
    EXPECT_TRUE(is_abrupt_or_clean_end(ec)) << ec.message();
  }());
}

TEST(Session, GoAwayReplacedIsReported) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto t = co_await make_tunnel();
    t.agent->stop(GoAwayCode::replaced, "another proxy connected");
    EXPECT_TRUE(co_await t.proxy_run->ended.wait());
    EXPECT_EQ(t.proxy_run->reason, make_error_code(Error::peer_went_away))
        << t.proxy_run->reason.message();
    CO_ASSERT_TRUE(t.proxy->go_away_code().has_value());
    EXPECT_EQ(*t.proxy->go_away_code(), GoAwayCode::replaced);
    EXPECT_NE(t.proxy->go_away_reason().find("replaced by a newer link"), std::string::npos)
        << t.proxy->go_away_reason();
    EXPECT_NE(t.proxy->go_away_reason().find("another proxy connected"), std::string::npos)
        << t.proxy->go_away_reason();
    EXPECT_TRUE(co_await t.agent_run->ended.wait());
  }());
}

// The agent opens streams too (inbound connections); they land through the proxy's dialer.
TEST(Session, InboundStreamFromTheAgent) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    auto t = co_await make_tunnel();
    auto [client, local] = co_await socket_pair();
    t.agent->open_stream(std::move(local), Target{Target::Kind::inbound, "", server.port()});
    co_await write_text(client, "inbound");
    client.shutdown(tcp::socket::shutdown_send);
    auto [ec, got] = co_await read_all(client);
    EXPECT_EQ(got, "inbound") << ec.message();
    EXPECT_EQ(t.proxy_dialer->dials, 1);
    EXPECT_EQ(t.proxy_dialer->targets.at(0).kind, Target::Kind::inbound);
    co_await t.close();
  }());
}

asio::awaitable<void> echo_check(tcp::socket c, int i, int& done, Event& all) {
  const auto mine = pattern(40000 + i * 1000, 100 + i);
  co_await write_text(c, mine);
  c.shutdown(tcp::socket::shutdown_send);
  auto [ec, got] = co_await read_all(c);
  EXPECT_TRUE(got == mine) << "stream " << i << ": " << ec.message();
  if (++done == 50) all.set();
}

// Many streams at once, each with its own payload: nothing is mixed up between streams.
TEST(Session, ConcurrentStreamsKeepTheirBytesApart) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    auto t = co_await make_tunnel();
    constexpr int kStreams = 50;
    int done = 0;
    Event all(io.get_executor());
    for (int i = 0; i < kStreams; ++i) {
      auto client = co_await t.connect(server.target());
      asio::co_spawn(io, echo_check(std::move(client), i, done, all), asio::detached);
    }
    EXPECT_TRUE(co_await all.wait(20s));
    co_await t.close();
  }(), 30s);
}

}  // namespace
}  // namespace lpk::tunnel
