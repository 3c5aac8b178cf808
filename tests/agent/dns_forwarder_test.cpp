// The dns service against a real dnsmasq on its own loopback address: ids, several queries in
// flight, truncation retried over TCP, a silent nameserver, half-close, malformed streams.
#include "agent/dns_forwarder.hpp"

#include <gtest/gtest.h>

#include "agent/services.hpp"
#include "proxy/tunnel/loopback_pair.hpp"
#include "tests/agent/dnsmasq.hpp"
#include "tests/proxy/tunnel/test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::agent {
namespace {

using namespace lpk::tunnel::test;
using asio::ip::udp;
using Packet = std::vector<std::uint8_t>;

Packet query(std::uint16_t id, const std::string& name, std::uint16_t qtype) {
  Packet q = {std::uint8_t(id >> 8), std::uint8_t(id), 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  std::size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(std::uint8_t(dot - start));
    q.insert(q.end(), name.begin() + long(start), name.begin() + long(dot));
    start = dot + 1;
  }
  q.insert(q.end(), {0, std::uint8_t(qtype >> 8), std::uint8_t(qtype), 0, 1});
  return q;
}

Packet framed(const Packet& m) {
  Packet out(2 + m.size());
  out[0] = std::uint8_t(m.size() >> 8);
  out[1] = std::uint8_t(m.size());
  std::copy(m.begin(), m.end(), out.begin() + 2);
  return out;
}

std::uint16_t id_of(const Packet& m) { return std::uint16_t((m[0] << 8) | m[1]); }
int rcode_of(const Packet& m) { return m[3] & 0x0F; }
int answers_of(const Packet& m) { return (m[6] << 8) | m[7]; }
bool truncated(const Packet& m) { return m[2] & 0x02; }

/// A forwarder serving one end of a loopback pair; the test talks on the other end.
struct Stream {
  tcp::socket client;
  std::shared_ptr<DnsForwarder> forwarder;
};

std::optional<Stream> open_stream(asio::io_context& io, udp::endpoint nameserver,
                                  DnsForwarderOptions options = {}) {
  auto pair = tunnel::loopback_pair(io.get_executor());
  if (!pair) return std::nullopt;
  auto& [service, client] = *pair;
  auto forwarder = std::make_shared<DnsForwarder>(std::move(service), nameserver, options);
  if (!forwarder->open()) return std::nullopt;
  forwarder->start();
  return Stream{std::move(client), forwarder};
}

asio::awaitable<std::optional<Packet>> read_message(tcp::socket& s) {
  std::array<std::uint8_t, 2> size{};
  auto [ec, n] = co_await asio::async_read(s, asio::buffer(size), kTuple);
  if (ec) co_return std::nullopt;
  Packet m((size[0] << 8) | size[1]);
  auto [ec2, n2] = co_await asio::async_read(s, asio::buffer(m), kTuple);
  if (ec2) co_return std::nullopt;
  co_return m;
}

asio::awaitable<void> send(tcp::socket& s, Packet bytes) {
  co_await asio::async_write(s, asio::buffer(bytes), kTuple);
}

/// True when the stream ends (EOF or reset) with no further message.
asio::awaitable<bool> ends(tcp::socket& s) {
  std::array<char, 16> b;
  auto [ec, n] = co_await s.async_read_some(asio::buffer(b), kTuple);
  co_return ec == asio::error::eof || ec == asio::error::connection_reset;
}

class DnsForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LPK_START_DNSMASQ(dnsmasq_);
  }
  std::unique_ptr<test::Dnsmasq> dnsmasq_;
  asio::io_context io_;
};

TEST_F(DnsForwarderTest, AnswersWithTheClientsId) {
  auto s = open_stream(io_, dnsmasq_->endpoint());
  ASSERT_TRUE(s);
  EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
    co_await send(s->client, framed(query(0xBEEF, "api.demo.svc.cluster.local", 1)));
    auto answer = co_await read_message(s->client);
    CO_ASSERT_TRUE(answer);
    EXPECT_EQ(id_of(*answer), 0xBEEF);
    EXPECT_EQ(rcode_of(*answer), 0);
    CO_ASSERT_EQ(answers_of(*answer), 1);
    // The A record's address is the last four bytes.
    Packet address(answer->end() - 4, answer->end());
    EXPECT_EQ(address, (Packet{10, 96, 0, 10}));
  }()));
}

TEST_F(DnsForwarderTest, ManyQueriesInFlightWithSharedIds) {
  auto s = open_stream(io_, dnsmasq_->endpoint());
  ASSERT_TRUE(s);
  EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
    // Every query carries the same id: the forwarder's own ids keep them apart upstream.
    const std::vector<std::string> names = {
        "api.demo.svc.cluster.local", "web.demo.svc.cluster.local", "nope.demo.svc.cluster.local"};
    Packet all;
    for (int i = 0; i < 30; ++i) {
      auto f = framed(query(7, names[std::size_t(i) % 3], 1));
      all.insert(all.end(), f.begin(), f.end());
    }
    co_await send(s->client, all);
    std::map<std::string, int> seen;
    for (int i = 0; i < 30; ++i) {
      auto answer = co_await read_message(s->client);
      CO_ASSERT_TRUE(answer);
      EXPECT_EQ(id_of(*answer), 7);
      if (rcode_of(*answer) == 3) {
        ++seen["nxdomain"];
      } else {
        Packet address(answer->end() - 4, answer->end());
        ++seen[std::to_string(address[3])];
      }
    }
    EXPECT_EQ(seen, (std::map<std::string, int>{{"10", 10}, {"11", 10}, {"nxdomain", 10}}));
  }()));
}

TEST_F(DnsForwarderTest, TruncatedAnswerIsAskedAgainOverTcp) {
  // Precondition: over UDP without EDNS, dnsmasq really truncates this answer.
  {
    udp::socket probe(io_, udp::endpoint(dnsmasq_->endpoint().address(), 0));
    probe.send_to(asio::buffer(query(1, "big.test", 16)), dnsmasq_->endpoint());
    Packet reply(4096);
    ASSERT_TRUE(run_task(
        io_,
        [&]() -> asio::awaitable<void> {
          auto [ec, n] = co_await probe.async_receive(asio::buffer(reply), kTuple);
          reply.resize(n);
        }(),
        5s));
    ASSERT_TRUE(truncated(reply));
  }
  io_.restart();  // run_task stops the io_context when its task ends
  auto s = open_stream(io_, dnsmasq_->endpoint());
  ASSERT_TRUE(s);
  EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
    co_await send(s->client, framed(query(0x4242, "big.test", 16)));
    auto answer = co_await read_message(s->client);
    CO_ASSERT_TRUE(answer);
    EXPECT_EQ(id_of(*answer), 0x4242);
    EXPECT_FALSE(truncated(*answer));
    EXPECT_EQ(answers_of(*answer), 1);
    EXPECT_GT(answer->size(), 750u);
    std::string text(answer->begin(), answer->end());
    EXPECT_NE(text.find(test::big_txt_chunk('c')), std::string::npos);
  }()));
}

TEST_F(DnsForwarderTest, SilentNameserverGivesServfailInTime) {
  udp::socket silent(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  DnsForwarderOptions options;
  options.timeout = 300ms;
  options.retransmit = 100ms;
  auto s = open_stream(io_, silent.local_endpoint(), options);
  ASSERT_TRUE(s);
  EXPECT_TRUE(run_task(
      io_,
      [&]() -> asio::awaitable<void> {
        const auto q = query(0x0102, "api.demo.svc.cluster.local", 28);
        const auto started = std::chrono::steady_clock::now();
        co_await send(s->client, framed(q));
        auto answer = co_await read_message(s->client);
        CO_ASSERT_TRUE(answer);
        EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
        EXPECT_EQ(id_of(*answer), 0x0102);
        EXPECT_EQ(rcode_of(*answer), 2);
        EXPECT_TRUE((*answer)[2] & 0x80);
        EXPECT_EQ(Packet(answer->begin() + 12, answer->end()), Packet(q.begin() + 12, q.end()));
      }(),
      5s));
  // It was sent once and retransmitted once.
  std::array<std::uint8_t, 512> b;
  int datagrams = 0;
  while (silent.available() > 0) {
    silent.receive(asio::buffer(b));
    ++datagrams;
  }
  EXPECT_EQ(datagrams, 2);
}

TEST_F(DnsForwarderTest, HalfClosedStreamGetsItsAnswersThenEnds) {
  auto s = open_stream(io_, dnsmasq_->endpoint());
  ASSERT_TRUE(s);
  EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
    auto both = framed(query(1, "api.demo.svc.cluster.local", 1));
    auto second = framed(query(2, "web.demo.svc.cluster.local", 1));
    both.insert(both.end(), second.begin(), second.end());
    co_await send(s->client, both);
    s->client.shutdown(tcp::socket::shutdown_send);
    auto a = co_await read_message(s->client);
    auto b = co_await read_message(s->client);
    CO_ASSERT_TRUE(a && b);
    EXPECT_EQ(id_of(*a) + id_of(*b), 3);
    EXPECT_TRUE(co_await ends(s->client));
  }()));
}

TEST_F(DnsForwarderTest, MalformedInputEndsOnlyItsStream) {
  struct Case {
    const char* what;
    Packet bytes;
  };
  auto response = query(9, "api.demo.svc.cluster.local", 1);
  response[2] |= 0x80;
  auto compressed = Packet{0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1};
  auto two_questions = query(9, "a.test", 1);
  two_questions[5] = 2;
  const auto whole = query(9, "a.test", 1);
  const std::vector<Case> cases = {
      {"shorter than a header", framed(Packet{1, 2, 3, 4, 5})},
      {"a response", framed(response)},
      {"a compressed question", framed(compressed)},
      {"two questions", framed(two_questions)},
      {"a question running past the message", framed(Packet(whole.begin(), whole.end() - 3))},
      {"the stream ending inside a message", Packet{0, 40, 0, 1, 2}},
  };
  auto healthy = open_stream(io_, dnsmasq_->endpoint());
  ASSERT_TRUE(healthy);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto bad = open_stream(io_, dnsmasq_->endpoint());
    ASSERT_TRUE(bad);
    io_.restart();  // run_task stops the io_context when its task ends
    EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
      co_await send(bad->client, c.bytes);
      if (std::string(c.what).find("ending") != std::string::npos) {
        bad->client.shutdown(tcp::socket::shutdown_send);
      }
      EXPECT_TRUE(co_await ends(bad->client));
      // The other stream still answers.
      co_await send(healthy->client, framed(query(0x77, "api.demo.svc.cluster.local", 1)));
      auto answer = co_await read_message(healthy->client);
      CO_ASSERT_TRUE(answer);
      EXPECT_EQ(id_of(*answer), 0x77);
      EXPECT_EQ(rcode_of(*answer), 0);
    }()));
  }
}

TEST(DnsWire, QuestionEndAndServfail) {
  auto q = query(0xABCD, "api.demo", 33);
  ASSERT_EQ(question_end(q), q.size());
  EXPECT_FALSE(question_end(Packet(q.begin(), q.end() - 1)));
  EXPECT_FALSE(question_end(Packet(q.begin(), q.begin() + 12)));
  auto s = servfail_for(q, q.size());
  EXPECT_EQ(s.size(), q.size());
  EXPECT_EQ(id_of(s), 0xABCD);
  EXPECT_EQ(s[2], 0x81);  // QR + RD
  EXPECT_EQ(s[3], 0x82);  // RA + SERVFAIL
  EXPECT_EQ(answers_of(s), 0);
  // A name longer than 255 bytes is malformed.
  Packet long_name(12, 0);
  long_name[5] = 1;
  for (int i = 0; i < 5; ++i) {
    long_name.push_back(63);
    long_name.insert(long_name.end(), 63, 'a');
  }
  long_name.insert(long_name.end(), {0, 0, 1, 0, 1});
  EXPECT_FALSE(question_end(long_name));
}

TEST(DnsWire, FirstNameserver) {
  lpk::test::TempDir dir;
  auto a = first_nameserver(dir.write("a",
                                      "# comment\nsearch x\nnameserver 10.96.0.10\n"
                                      "nameserver 10.96.0.11\n"));
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, udp::endpoint(asio::ip::make_address("10.96.0.10"), 53));
  auto b = first_nameserver(dir.write("b", "nameserver bogus\nnameserver 127.0.0.5#5353\n"));
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, udp::endpoint(asio::ip::make_address("127.0.0.5"), 5353));
  auto none = first_nameserver(dir.write("c", "search only\n"));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no usable nameserver"), std::string::npos)
      << none.error().message;
  auto missing = first_nameserver(dir.path() + "/missing");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot read"), std::string::npos)
      << missing.error().message;
}

}  // namespace
}  // namespace lpk::agent
