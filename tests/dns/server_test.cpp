#include "dns/server.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "sample_table.hpp"
#include "test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::dns {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::make_query;
using test::Packet;
using test::Response;

ldns_pkt* upstream_answer(const ldns_pkt* q, bool tcp) {
  const std::string name = test::qname(q);
  if (name == "slow.test.") return nullptr;
  if (name == "refused.test.") return test::reply(q, LDNS_RCODE_REFUSED, {});
  if (name == "nx.test.") {
    return test::reply(q, LDNS_RCODE_NXDOMAIN, {},
                       {"test. 3600 IN SOA ns.test. h.test. 1 2 3 4 30"});
  }
  if (name == "big.test.") {
    std::vector<std::string> many;
    for (int i = 0; i < 40; ++i) many.push_back("big.test. 60 IN A 127.5.0." + std::to_string(i));
    ldns_pkt* r = test::reply(q, LDNS_RCODE_NOERROR, tcp ? many : std::vector<std::string>{});
    if (!tcp) ldns_pkt_set_tc(r, true);
    return r;
  }
  if (name == "db.example.org.")
    return test::reply(q, LDNS_RCODE_NOERROR, {name + " 60 IN A 127.1.2.4"});
  ldns_pkt* r = test::reply(q, LDNS_RCODE_NOERROR, {name + " 60 IN A 127.1.2.3"});
  ldns_pkt_set_ad(r, true);  // a flag the stub must relay as it is
  return r;
}

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions so = {}, UpstreamOptions uo = {}) {
    upstream_server = std::make_unique<test::FakeUpstream>(io.io, upstream_answer);
    std::ofstream(conf) << "nameserver 127.0.0.1#" << upstream_server->port() << "\n";
    uo.resolv_conf = conf.string();
    uo.clock = [this] {
      return std::chrono::steady_clock::time_point(1000h) + elapsed.load() * 1s;
    };
    upstream = std::make_unique<Upstream>(io.io, uo);
    server = std::make_unique<Server>(io.io, so, NameTable::build(test::sample_spec()),
                                      upstream.get(), &cluster);
    server->start();
    udp = server->local_endpoint();
    tcp = {udp.address(), udp.port()};
    io.start();
  }
  void TearDown() override {
    if (server)
      io.run([&] {
        server->stop();
        upstream->stop();
      });
    io.stop();
  }
  Response ask_udp(const std::string& name, ldns_rr_type type, std::uint16_t edns = 0) {
    auto r = test::udp_exchange(udp, make_query(name, type, edns));
    EXPECT_TRUE(r) << name;
    return Response(r.value_or(Packet{}));
  }
  Response ask_tcp(const std::string& name, ldns_rr_type type) {
    test::TcpClient c(tcp);
    c.send(make_query(name, type));
    auto r = c.receive();
    EXPECT_TRUE(r) << name;
    return Response(r.value_or(Packet{}));
  }

  test::IoThread io;
  std::atomic<long> elapsed{0};  // seconds on the injected clock
  lpk::test::TempDir dir{"lpk-dns-test-"};
  const std::filesystem::path conf{dir / "resolv.conf"};
  test::FakeCluster cluster{io.io};
  std::unique_ptr<test::FakeUpstream> upstream_server;
  std::unique_ptr<Upstream> upstream;
  std::unique_ptr<Server> server;
  asio::ip::udp::endpoint udp;
  asio::ip::tcp::endpoint tcp;
};

TEST_F(ServerTest, AnswersOverUdpAndTcp) {
  start();
  EXPECT_EQ(ask_udp("redis.dev", LDNS_RR_TYPE_A).rdata(), std::vector<std::string>{"127.77.0.12"});
  EXPECT_EQ(ask_tcp("Redis.Dev.Svc.Cluster.Local", LDNS_RR_TYPE_A).rdata(),
            std::vector<std::string>{"127.77.0.12"});
}

TEST_F(ServerTest, SeveralQueriesInFlightOnOneTcpConnection) {
  start();
  test::TcpClient c(tcp);
  c.send(make_query("pending.dev.svc.cluster.local", LDNS_RR_TYPE_A, 0, 1));
  c.send(make_query("redis", LDNS_RR_TYPE_A, 0, 2));
  c.send(make_query("redis.com", LDNS_RR_TYPE_A, 0, 3));
  std::set<int> ids;
  for (int i = 0; i < 2; ++i) {
    auto r = c.receive();
    ASSERT_TRUE(r);
    ids.insert(Response(*r).ok() ? ldns_pkt_id(Response(*r).pkt) : -1);
  }
  EXPECT_EQ(ids, (std::set<int>{2, 3}));  // answered while query 1 is still waiting
  io.run([&] { cluster.release({0, {{"pending.dev.svc.cluster.local.", 1, 5, {127, 9, 9, 9}}}}); });
  auto r = c.receive();
  ASSERT_TRUE(r);
  Response late(*r);
  EXPECT_EQ(ldns_pkt_id(late.pkt), 1);
  EXPECT_EQ(late.rdata(), std::vector<std::string>{"127.9.9.9"});
}

TEST_F(ServerTest, SilentAndHalfSentTcpClientsTimeOut) {
  ServerOptions so;
  so.tcp_idle_timeout = 200ms;
  start(so);
  test::TcpClient silent(tcp, 3000 * kTestSlack);
  test::TcpClient half(tcp, 3000 * kTestSlack);
  half.send_raw({0, 40, 0x12});  // announces 40 bytes, sends 1
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.closed_by_peer());
  EXPECT_TRUE(half.closed_by_peer());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, slack(2s));
}

TEST_F(ServerTest, TcpClientThatDoesNotReadIsClosedAndOthersAreServed) {
  ServerOptions so;
  so.tcp_idle_timeout = 300ms;
  start(so);
  asio::io_context cio;
  asio::ip::tcp::socket hog(cio);
  hog.open(asio::ip::tcp::v4());
  hog.set_option(asio::socket_base::receive_buffer_size(4096));
  hog.connect(tcp);
  timeval tv{5, 0};
  setsockopt(hog.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  Packet q = make_query("many.dev", LDNS_RR_TYPE_A);  // 1.6 kB answers fill buffers fast
  Packet framed{0, static_cast<std::uint8_t>(q.size())};
  framed.insert(framed.end(), q.begin(), q.end());
  Packet burst;
  for (int i = 0; i < 64; ++i) burst.insert(burst.end(), framed.begin(), framed.end());
  // Keep sending, never read: the server must stop reading (bounded queue), then close.
  const auto t0 = std::chrono::steady_clock::now();
  bool failed = false;
  while (!failed && std::chrono::steady_clock::now() - t0 < slack(10s)) {
    failed = ::send(hog.native_handle(), burst.data(), burst.size(), MSG_NOSIGNAL) < 0;
    if (std::chrono::steady_clock::now() - t0 > 1s && !failed) {
      EXPECT_EQ(ask_udp("redis", LDNS_RR_TYPE_A).rdata(), std::vector<std::string>{"127.77.0.12"});
    }
  }
  EXPECT_TRUE(failed) << "the server kept a client that never reads";
  EXPECT_TRUE(errno == ECONNRESET || errno == EPIPE) << std::strerror(errno);
  EXPECT_EQ(ask_tcp("redis", LDNS_RR_TYPE_A).rdata(), std::vector<std::string>{"127.77.0.12"});
}

TEST_F(ServerTest, OversizedTcpMessageEndsOnlyItsConnection) {
  start();
  test::TcpClient other(tcp);
  test::TcpClient bad(tcp);
  Packet huge{0xFF, 0xFF};
  huge.resize(9000, 0x41);
  bad.send_raw(huge);
  EXPECT_TRUE(bad.closed_by_peer());
  other.send(make_query("redis", LDNS_RR_TYPE_A));
  auto r = other.receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(Response(*r).rdata(), std::vector<std::string>{"127.77.0.12"});
  EXPECT_EQ(ask_udp("redis", LDNS_RR_TYPE_A).rdata(), std::vector<std::string>{"127.77.0.12"});
}

TEST_F(ServerTest, MalformedPacketsGetFormErrOrSilenceAndOthersAreServed) {
  start();
  const Packet good = make_query("redis", LDNS_RR_TYPE_A);
  Packet qd2 = good;
  qd2[5] = 2;
  Packet notimp = good;
  notimp[2] |= 4 << 3;
  Packet cut(good.begin(), good.end() - 2);
  EXPECT_EQ(Response(test::udp_exchange(udp, qd2).value_or(Packet{})).rcode(), LDNS_RCODE_FORMERR);
  EXPECT_EQ(Response(test::udp_exchange(udp, cut).value_or(Packet{})).rcode(), LDNS_RCODE_FORMERR);
  EXPECT_EQ(Response(test::udp_exchange(udp, notimp).value_or(Packet{})).rcode(),
            LDNS_RCODE_NOTIMPL);
  EXPECT_FALSE(test::udp_exchange(udp, Packet{1, 2, 3}, 200));  // no header: dropped
  // A burst of garbage from one client, then a good query from another.
  asio::io_context cio;
  asio::ip::udp::socket noisy(cio, {udp.address(), 0});
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    Packet junk(rng() % 600);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    if (i % 2 && junk.size() >= good.size())
      std::copy(good.begin(), good.begin() + 12, junk.begin());
    noisy.send_to(asio::buffer(junk), udp);
  }
  EXPECT_EQ(ask_udp("redis", LDNS_RR_TYPE_A).rdata(), std::vector<std::string>{"127.77.0.12"});
  test::TcpClient c(tcp);
  c.send(cut);
  EXPECT_EQ(Response(c.receive().value_or(Packet{})).rcode(), LDNS_RCODE_FORMERR);
  c.send(good);  // the connection survives a malformed message
  EXPECT_EQ(Response(c.receive().value_or(Packet{})).rdata(),
            std::vector<std::string>{"127.77.0.12"});
}

TEST_F(ServerTest, ForwardsAndRelaysRcodeFlagsAndEdns) {
  start();
  Response ok = ask_udp("redis.com", LDNS_RR_TYPE_A, 1232);
  EXPECT_EQ(ok.rdata(), std::vector<std::string>{"127.1.2.3"});
  EXPECT_TRUE(ldns_pkt_ad(ok.pkt));
  EXPECT_TRUE(ldns_pkt_edns(ok.pkt));
  EXPECT_EQ(ask_udp("refused.test", LDNS_RR_TYPE_A).rcode(), LDNS_RCODE_REFUSED);
  EXPECT_FALSE(ldns_pkt_edns(ask_udp("plain.test", LDNS_RR_TYPE_A).pkt));
}

TEST_F(ServerTest, PositiveAnswersAreCachedUntilTheirTtlEnds) {
  start();
  ask_udp("redis.com", LDNS_RR_TYPE_A);
  Response again = ask_udp("REDIS.com", LDNS_RR_TYPE_A);
  EXPECT_EQ(upstream_server->queries, 1);
  EXPECT_EQ(test::qname(again.pkt), "REDIS.com.");
  elapsed = 45;
  EXPECT_EQ(ask_udp("redis.com", LDNS_RR_TYPE_A).answer_strings()[0],
            "redis.com.\t15\tIN\tA\t127.1.2.3");
  EXPECT_EQ(upstream_server->queries, 1);
  elapsed = 61;
  ask_udp("redis.com", LDNS_RR_TYPE_A);
  EXPECT_EQ(upstream_server->queries, 2);
}

TEST_F(ServerTest, NegativeAnswersAreCachedForTheSoaMinimum) {
  start();
  EXPECT_EQ(ask_udp("nx.test", LDNS_RR_TYPE_A).rcode(), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(ask_tcp("nx.test", LDNS_RR_TYPE_A).rcode(), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(upstream_server->queries, 1);
  elapsed = 31;
  EXPECT_EQ(ask_udp("nx.test", LDNS_RR_TYPE_A).rcode(), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(upstream_server->queries, 2);
}

TEST_F(ServerTest, BigAnswersAreTruncatedOverUdpAndWholeOverTcp) {
  start();
  Response udp_answer = ask_udp("big.test", LDNS_RR_TYPE_A);
  EXPECT_TRUE(ldns_pkt_tc(udp_answer.pkt));
  EXPECT_EQ(udp_answer.answers(), 0u);
  Response tcp_answer = ask_tcp("big.test", LDNS_RR_TYPE_A);
  EXPECT_FALSE(ldns_pkt_tc(tcp_answer.pkt));
  EXPECT_EQ(tcp_answer.answers(), 40u);
  EXPECT_EQ(ask_udp("big.test", LDNS_RR_TYPE_A, 4096).answers(), 40u);
}

TEST_F(ServerTest, UpstreamTimeoutGivesServfailInBoundedTime) {
  UpstreamOptions uo;
  uo.timeout = 100ms;
  uo.tries = 1;
  start({}, uo);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ask_udp("slow.test", LDNS_RR_TYPE_A).rcode(), LDNS_RCODE_SERVFAIL);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, slack(1500ms));
  EXPECT_EQ(ask_udp("redis", LDNS_RR_TYPE_A).rdata(), std::vector<std::string>{"127.77.0.12"});
}

TEST_F(ServerTest, UnknownClusterNamesGoToTheClusterResolver) {
  ServerOptions so;
  so.cluster_timeout = 100ms;
  cluster.answers["db-0.db.other.svc.cluster.local."] = {
      0, {{"db-0.db.other.svc.cluster.local.", 1, 5, {10, 1, 2, 3}}}};
  cluster.answers["gone.other.svc.cluster.local."] = {3, {}};
  start(so);
  EXPECT_EQ(ask_udp("db-0.db.other.svc.cluster.local", LDNS_RR_TYPE_A).rdata(),
            std::vector<std::string>{"10.1.2.3"});
  Response nx = ask_tcp("gone.other", LDNS_RR_TYPE_A);  // short form, known namespace
  EXPECT_EQ(nx.rcode(), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(nx.authority(), 1u);
  EXPECT_EQ(ask_udp("silent.dev.svc.cluster.local", LDNS_RR_TYPE_A).rcode(), LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(cluster.asked.size(), 3u);
}

TEST_F(ServerTest, ExternalNameTargetIsResolvedUpstream) {
  start();
  Response r = ask_udp("ext.dev", LDNS_RR_TYPE_A);
  EXPECT_EQ(r.rdata(), (std::vector<std::string>{"db.example.org.", "127.1.2.4"}));
  Response local = ask_tcp("alias", LDNS_RR_TYPE_A);  // target is one of ours
  EXPECT_EQ(local.rdata(),
            (std::vector<std::string>{"redis.dev.svc.cluster.local.", "127.77.0.12"}));
}

TEST_F(ServerTest, TableIsReplacedWhileServing) {
  ServerOptions so;
  so.cluster_timeout = 100ms;
  start(so);
  EXPECT_EQ(ask_udp("fresh.dev", LDNS_RR_TYPE_A).rcode(),
            LDNS_RCODE_SERVFAIL);  // cluster is silent
  TableSpec spec = test::sample_spec();
  spec.services.push_back(
      {.name = "fresh", .ns = "dev", .address = asio::ip::make_address("127.77.0.99")});
  auto table = NameTable::build(spec);
  io.run([&] { server->set_table(table); });
  EXPECT_EQ(ask_udp("fresh.dev", LDNS_RR_TYPE_A).rdata(), std::vector<std::string>{"127.77.0.99"});
}

}  // namespace
}  // namespace lpk::dns
