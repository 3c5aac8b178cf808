// The stub DNS of `run` and `connect` on loopback, with real packets (ldns) over UDP and TCP: the
// names of its table, everything else forwarded to its own upstream (a fake on loopback, named by
// its resolv.conf), cluster names the table lacks asked of a ClusterResolver, and tables
// swapped while clients keep asking.
#include "proxy/forward/stub_dns.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "tests/dns/test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

namespace asio = boost::asio;
using dns::test::make_query;
using dns::test::Packet;
using dns::test::Response;
using namespace std::chrono_literals;

const auto kApi = asio::ip::make_address("127.77.0.10");
const auto kDb = asio::ip::make_address("127.77.0.11");

ldns_pkt* upstream_answer(const ldns_pkt* q, bool) {
  const auto name = dns::test::qname(q);
  if (name == "nx.example.") return dns::test::reply(q, LDNS_RCODE_NXDOMAIN, {});
  return dns::test::reply(q, LDNS_RCODE_NOERROR, {name + " 60 IN A 192.0.2.7"});
}

std::vector<NamedService> services() {
  return {{"api", kApi, {80, 8080}}, {"db.data", kDb, {5432}}, {"api", kApi, {9090}}};
}

StubDnsOptions options(const std::string& resolv_conf) {
  StubDnsOptions o;
  o.listen = {asio::ip::make_address("127.0.0.1"), 0};
  o.session_namespace = "dev";
  o.resolv_conf = resolv_conf;
  return o;
}

TEST(TableFor, SessionNamesAndNamespacedNamesWithTheirPortsMerged) {
  auto spec = table_for(services(), options(""));
  EXPECT_EQ(spec.zone, "cluster.local");
  EXPECT_EQ(spec.session_namespace, "dev");
  EXPECT_EQ(std::set<std::string>(spec.namespaces.begin(), spec.namespaces.end()),
            (std::set<std::string>{"dev", "data"}));
  ASSERT_EQ(spec.services.size(), 2u);
  EXPECT_EQ(spec.services[0].name, "api");
  EXPECT_EQ(spec.services[0].ns, "dev");
  EXPECT_EQ(spec.services[0].address, kApi);
  std::vector<std::uint16_t> ports;
  for (const auto& p : spec.services[0].ports) {
    ports.push_back(p.port);
    EXPECT_EQ(p.protocol, "tcp");
  }
  EXPECT_EQ(ports, (std::vector<std::uint16_t>{80, 8080, 9090}));
  EXPECT_EQ(spec.services[1].name, "db");
  EXPECT_EQ(spec.services[1].ns, "data");
  EXPECT_EQ(spec.services[1].address, kDb);
}

class StubDnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<dns::test::FakeUpstream>(io_.io, upstream_answer);
    std::ofstream(conf_) << "nameserver 127.0.0.1#" << upstream_->port() << "\n";
  }
  void TearDown() override {
    if (stub_) io_.run([&] { stub_->stop(); });
    io_.stop();
    stub_.reset();
  }
  void start(dns::ClusterResolver* cluster = nullptr, bool with_table = false) {
    if (with_table) {
      stub_ = std::make_unique<StubDns>(io_.io, options(conf_), table_for(services(), options("")),
                                        cluster);
    } else {
      stub_ = std::make_unique<StubDns>(io_.io, options(conf_), services());
    }
    io_.start();
  }
  Response udp(const std::string& name, ldns_rr_type type = LDNS_RR_TYPE_A) {
    auto r = dns::test::udp_exchange(stub_->endpoint(), make_query(name, type));
    EXPECT_TRUE(r) << name << ": no answer";
    return Response(r.value_or(Packet{}));
  }
  Response tcp(const std::string& name, ldns_rr_type type = LDNS_RR_TYPE_A) {
    dns::test::TcpClient c({stub_->endpoint().address(), stub_->endpoint().port()});
    c.send(make_query(name, type));
    auto r = c.receive();
    EXPECT_TRUE(r) << name << ": no answer";
    return Response(r.value_or(Packet{}));
  }

  dns::test::IoThread io_;
  std::unique_ptr<dns::test::FakeUpstream> upstream_;
  lpk::test::TempDir tmp_{"lpk-stub-dns-test-"};
  const std::filesystem::path conf_{tmp_ / "resolv.conf"};
  std::unique_ptr<StubDns> stub_;
};

TEST_F(StubDnsTest, AnswersItsNamesOverUdpAndTcpAndForwardsTheRest) {
  start();
  EXPECT_EQ(stub_->endpoint().address(), asio::ip::make_address("127.0.0.1"));
  EXPECT_NE(stub_->endpoint().port(), 0);
  EXPECT_EQ(udp("api.dev.svc.cluster.local").rdata(), std::vector<std::string>{kApi.to_string()});
  EXPECT_EQ(udp("api").rdata(), std::vector<std::string>{kApi.to_string()});
  EXPECT_EQ(tcp("DB.data.svc.cluster.local").rdata(), std::vector<std::string>{kDb.to_string()});
  EXPECT_EQ(upstream_->queries, 0);

  EXPECT_EQ(udp("www.example.").rdata(), std::vector<std::string>{"192.0.2.7"});
  EXPECT_EQ(tcp("nx.example.").rcode(), LDNS_RCODE_NXDOMAIN);
  EXPECT_GE(upstream_->queries, 2);
}

TEST_F(StubDnsTest, WithoutAClusterResolverUnknownClusterNamesAreNxdomain) {
  start();
  auto r = udp("web-0.web.dev.svc.cluster.local");
  EXPECT_EQ(r.rcode(), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(r.answers(), 0u);
  EXPECT_EQ(upstream_->queries, 0) << "a cluster name went to the machine's resolvers";
}

TEST_F(StubDnsTest, ClusterNamesTheTableLacksGoToTheClusterResolver) {
  dns::test::FakeCluster cluster(io_.io);
  cluster.answers["web-0.web.dev.svc.cluster.local."] = {
      0, {{"web-0.web.dev.svc.cluster.local.", 1, 5, {10, 244, 0, 7}}}};
  cluster.answers["gone.dev.svc.cluster.local."] = {3, {}};
  start(&cluster, true);
  EXPECT_EQ(udp("web-0.web.dev.svc.cluster.local").rdata(), std::vector<std::string>{"10.244.0.7"});
  EXPECT_EQ(tcp("gone.dev.svc.cluster.local").rcode(), LDNS_RCODE_NXDOMAIN);
  // What the table knows never reaches the resolver.
  EXPECT_EQ(udp("api.dev.svc.cluster.local").rdata(), std::vector<std::string>{kApi.to_string()});
  std::vector<std::string> asked;
  io_.run([&] { asked = cluster.asked; });
  EXPECT_EQ(asked, (std::vector<std::string>{"web-0.web.dev.svc.cluster.local.",
                                             "gone.dev.svc.cluster.local."}));
  EXPECT_EQ(upstream_->queries, 0);
}

TEST_F(StubDnsTest, SetTableReplacesEveryNameAtOnce) {
  start();
  auto next = table_for({{"web", kDb, {80}}}, options(""));
  io_.run([&] { stub_->set_table(next); });
  EXPECT_EQ(udp("web.dev.svc.cluster.local").rdata(), std::vector<std::string>{kDb.to_string()});
  EXPECT_EQ(udp("api.dev.svc.cluster.local").rcode(), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(tcp("db.data.svc.cluster.local").rcode(), LDNS_RCODE_NXDOMAIN);
}

// A client asks without pause while the io thread swaps between two tables: every answer is
// one table's, never a failure or a mix.
TEST_F(StubDnsTest, TablesSwappedUnderQueriesAnswerFromOneOrTheOther) {
  start();
  const std::vector<dns::TableSpec> tables = {
      table_for({{"one", kApi, {80}}, {"two", kApi, {80}}}, options("")),
      table_for({{"one", kDb, {80}}, {"two", kDb, {80}}}, options(""))};
  io_.run([&] { stub_->set_table(tables[1]); });
  std::atomic<bool> done{false};
  std::thread swapper([&] {
    for (int i = 0; i < 200; ++i) io_.run([&] { stub_->set_table(tables[i % 2]); });
    done = true;
  });
  int asked = 0;
  while (!done || asked < 50) {
    for (const char* name : {"one.dev.svc.cluster.local", "two"}) {
      auto r = udp(name);
      ASSERT_EQ(r.rcode(), LDNS_RCODE_NOERROR) << name;
      auto rdata = r.rdata();
      ASSERT_EQ(rdata.size(), 1u) << name;
      ASSERT_TRUE(rdata[0] == kApi.to_string() || rdata[0] == kDb.to_string()) << rdata[0];
      ++asked;
    }
  }
  swapper.join();
  EXPECT_EQ(udp("one").rdata(), std::vector<std::string>{kDb.to_string()});  // the last one set
}

TEST_F(StubDnsTest, StopClosesTheListeners) {
  start();
  const auto endpoint = stub_->endpoint();
  EXPECT_EQ(udp("api").rdata(), std::vector<std::string>{kApi.to_string()});
  io_.run([&] { stub_->stop(); });
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({endpoint.address(), endpoint.port()}, ec);
  EXPECT_EQ(ec, asio::error::connection_refused);
}

TEST_F(StubDnsTest, AnAddressInUseThrows) {
  asio::io_context io;
  asio::ip::udp::socket holder(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto o = options(conf_);
  o.listen = holder.local_endpoint();
  EXPECT_THROW(StubDns(io_.io, o, services()), boost::system::system_error);
}

}  // namespace
}  // namespace lpk::proxy
