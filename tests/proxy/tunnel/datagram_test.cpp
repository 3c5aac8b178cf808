// UDP over the tunnel: the record codec (pure), a DatagramFlow against the far end of its
// loopback pair (queue bound, idle expiry, malformed records), the proxy's flow table, and a
// UDP echo reached through two real Sessions.
#include "proxy/tunnel/datagram.hpp"

#include <gtest/gtest.h>

#include "proxy/tunnel/datagram_flow.hpp"
#include "tests/proxy/tunnel/test_util.hpp"

namespace lpk::tunnel {
namespace {

using namespace test;
using asio::ip::udp;

std::vector<std::byte> record(std::string_view datagram) {
  auto header = encode_record_header(datagram.size());
  std::vector<std::byte> out(header.begin(), header.end());
  auto body = to_bytes(datagram);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

TEST(DatagramRecord, RoundTripsKeepingBoundaries) {
  auto bytes = record("hello");
  auto second = record("");
  bytes.insert(bytes.end(), second.begin(), second.end());
  auto step = decode_record(bytes);
  ASSERT_EQ(step.status, RecordStep::Status::record);
  EXPECT_EQ(to_text(step.datagram), "hello");
  EXPECT_EQ(step.consumed, 7u);
  step = decode_record(std::span(bytes).subspan(7));
  ASSERT_EQ(step.status, RecordStep::Status::record) << "an empty datagram is a datagram";
  EXPECT_EQ(step.datagram.size(), 0u);
  EXPECT_EQ(step.consumed, 2u);
}

TEST(DatagramRecord, PartialInputNeedsMore) {
  auto bytes = record(std::string(1400, 'x'));
  for (std::size_t n : {0u, 1u, 2u, 100u, 1401u}) {
    EXPECT_EQ(decode_record(std::span(bytes).first(n)).status, RecordStep::Status::need_more) << n;
  }
  auto largest = record(std::string(kMaxDatagramSize, 'y'));
  EXPECT_EQ(decode_record(largest).status, RecordStep::Status::record);
}

TEST(DatagramRecord, LongerThanAnyUdpDatagramIsMalformed) {
  const std::byte too_long[] = {std::byte{0xff}, std::byte{0xe4}};  // 65508
  EXPECT_EQ(decode_record(too_long).status, RecordStep::Status::malformed);
}

struct FlowEnds {
  std::shared_ptr<DatagramFlow> flow;
  tcp::socket far;                     // stands for the stream
  std::vector<std::string> sent_out;   // what the flow sent out of its UDP side
};

asio::awaitable<std::unique_ptr<FlowEnds>> make_flow(DatagramFlowOptions options) {
  auto [near, far] = co_await socket_pair();
  auto ends = std::make_unique<FlowEnds>(FlowEnds{nullptr, std::move(far), {}});
  auto* sink = &ends->sent_out;
  ends->flow = std::make_shared<DatagramFlow>(
      std::move(near),
      [sink](std::span<const std::byte> d) {
        sink->push_back(to_text(d));
        return true;
      },
      options);
  co_return ends;
}

TEST(DatagramFlow, CarriesDatagramsBothWaysAsRecords) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await make_flow(DatagramFlowOptions{});
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, ends->flow->run(), asio::detached);
    ends->flow->push(to_bytes("one"));
    ends->flow->push(to_bytes("two!"));
    auto [ec, got] = co_await read_exactly(ends->far, 2 + 3 + 2 + 4);
    EXPECT_FALSE(ec);
    auto expected = record("one");
    auto second = record("two!");
    expected.insert(expected.end(), second.begin(), second.end());
    EXPECT_EQ(got, to_text(expected));
    // A record split across writes still arrives as one datagram.
    auto back = record("reply");
    co_await asio::async_write(ends->far, asio::buffer(back.data(), 3), kTuple);
    co_await asio::async_write(ends->far, asio::buffer(back.data() + 3, back.size() - 3), kTuple);
    EXPECT_TRUE(co_await eventually([&] { return ends->sent_out.size() == 1; }));
    EXPECT_EQ(ends->sent_out, std::vector<std::string>{"reply"});
    ends->flow->stop();
  }());
}

TEST(DatagramFlow, QueueBoundDropsAndCounts) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await make_flow(DatagramFlowOptions{.queue_bytes = 100});
    // Not running: nothing drains the queue, as when the stream has no credit.
    for (int i = 0; i < 10; ++i) ends->flow->push(to_bytes(std::string(40, 'a')));
    EXPECT_EQ(ends->flow->stats().to_stream, 2u);
    EXPECT_EQ(ends->flow->stats().dropped, 8u);
    EXPECT_LE(ends->flow->queued_bytes(), 100u);
    ends->flow->push(std::vector<std::byte>(kMaxDatagramSize + 1));
    EXPECT_EQ(ends->flow->stats().dropped, 9u) << "longer than any UDP datagram";
    co_return;
  }());
}

TEST(DatagramFlow, IdleFlowEndsAndClosesItsStream) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await make_flow(DatagramFlowOptions{.idle_timeout = 50ms});
    auto ex = co_await asio::this_coro::executor;
    Event ended(ex);
    asio::co_spawn(ex, ends->flow->run(), [&](std::exception_ptr) { ended.set(); });
    EXPECT_TRUE(co_await ended.wait(5s));
    auto [ec, rest] = co_await read_all(ends->far);
    EXPECT_EQ(ec, asio::error::eof) << "an orderly end, so the far flow ends too";
    EXPECT_FALSE(ends->flow->malformed());
  }());
}

TEST(DatagramFlow, MalformedRecordResetsOnlyItsStream) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await make_flow(DatagramFlowOptions{});
    auto ex = co_await asio::this_coro::executor;
    Event ended(ex);
    asio::co_spawn(ex, ends->flow->run(), [&](std::exception_ptr) { ended.set(); });
    auto good = record("fine");
    const std::byte bad[] = {std::byte{0xff}, std::byte{0xff}, std::byte{0}};
    co_await asio::async_write(ends->far, asio::buffer(good), kTuple);
    co_await asio::async_write(ends->far, asio::buffer(bad), kTuple);
    EXPECT_TRUE(co_await ended.wait(5s));
    EXPECT_TRUE(ends->flow->malformed());
    EXPECT_EQ(ends->sent_out, std::vector<std::string>{"fine"});
    auto [ec, rest] = co_await read_all(ends->far);
    EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
  }());
}

TEST(DatagramFlowTable, OneFlowPerSourceAndRepliesGoBackToIt) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    std::vector<tcp::socket> streams;  // the far ends, one per flow opened
    std::vector<std::pair<udp::endpoint, std::string>> replies;
    std::deque<tcp::socket> prepared;
    for (int i = 0; i < 2; ++i) {
      auto [near, far] = co_await socket_pair();
      prepared.push_back(std::move(near));
      streams.push_back(std::move(far));
    }
    auto table = std::make_shared<DatagramFlowTable>(
        ex,
        [&]() -> std::optional<tcp::socket> {
          auto s = std::move(prepared.front());
          prepared.pop_front();
          return s;
        },
        [&](const udp::endpoint& to, std::span<const std::byte> d) {
          replies.emplace_back(to, to_text(d));
          return true;
        });
    const udp::endpoint a(asio::ip::make_address("127.0.0.1"), 1111);
    const udp::endpoint b(asio::ip::make_address("127.0.0.1"), 2222);
    table->deliver(a, to_bytes("from a"));
    table->deliver(b, to_bytes("from b"));
    table->deliver(a, to_bytes("again a"));
    EXPECT_EQ(table->size(), 2u);
    auto [ec, got] = co_await read_exactly(streams[0], 2 + 6 + 2 + 7);
    EXPECT_EQ(got, to_text(record("from a")) + to_text(record("again a")));
    auto reply = record("to b");
    co_await asio::async_write(streams[1], asio::buffer(reply), kTuple);
    EXPECT_TRUE(co_await eventually([&] { return replies.size() == 1; }));
    EXPECT_EQ(replies.at(0).first, b);
    EXPECT_EQ(replies.at(0).second, "to b");
    // The far side ending a flow forgets it; the source's next datagram would open another.
    streams[1].close();
    EXPECT_TRUE(co_await eventually([&] { return table->size() == 1; }));
    table->stop();
    EXPECT_TRUE(co_await eventually([&] { return table->size() == 0; }));
  }());
}

// A UDP echo on 127.0.0.1 that answers every datagram to its sender, until the socket closes.
asio::awaitable<void> udp_echo(udp::socket& socket) {
  std::vector<char> buffer(65536);
  udp::endpoint from;
  for (;;) {
    auto [ec, n] = co_await socket.async_receive_from(asio::buffer(buffer), from, kTuple);
    if (ec) co_return;
    co_await socket.async_send_to(asio::buffer(buffer.data(), n), from, kTuple);
  }
}

TEST(DatagramSession, UdpEchoThroughTheTunnelKeepsEveryDatagram) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    udp::socket echo(ex, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    asio::co_spawn(ex, udp_echo(echo), asio::detached);
    SessionOptions po, ao;
    auto t = co_await make_tunnel(po, ao);
    EXPECT_TRUE(t.proxy->carries_datagrams());
    auto [client, local] = co_await socket_pair();
    t.proxy->open_stream(std::move(local), Target{Target::Kind::ipv4, "127.0.0.1",
                                                  echo.local_endpoint().port(), true});
    std::string sent;
    for (std::size_t size : {1u, 512u, 1400u, 0u, 65000u}) {
      auto r = record(pattern(size, unsigned(size)));
      sent += to_text(r);
      co_await asio::async_write(client, asio::buffer(r), kTuple);
    }
    auto [ec, got] = co_await read_exactly(client, sent.size());
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(got == sent) << "every datagram back, whole and in order on loopback";
    EXPECT_TRUE(t.dialer->targets.at(0).datagram);
    t.proxy->stop();
    EXPECT_TRUE(co_await t.agent_run->ended.wait());
    echo.close();
  }());
}

TEST(DatagramSession, AnAgentWithoutUdpIsNeverSentAFlow) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    SessionOptions po, old_agent;
    old_agent.datagram = false;  // stands for an lpk-agent from before UDP
    auto t = co_await make_tunnel(po, old_agent);
    EXPECT_FALSE(t.proxy->carries_datagrams());
    auto [client, local] = co_await socket_pair();
    t.proxy->open_stream(std::move(local), Target{Target::Kind::ipv4, "127.0.0.1", 9, true});
    auto [ec, rest] = co_await read_all(client);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    EXPECT_EQ(t.dialer->dials, 0) << "the old agent would have dialled TCP";
    EXPECT_EQ(t.proxy->stats().streams_opened, 0u);
    t.proxy->stop();
    EXPECT_TRUE(co_await t.agent_run->ended.wait());
  }());
}

}  // namespace
}  // namespace lpk::tunnel
