#include "dns/resolver.hpp"

#include <gtest/gtest.h>

#include "dns/detail/wire.hpp"
#include "sample_table.hpp"
#include "test_util.hpp"

namespace lpk::dns {
namespace {

using test::make_query;
using test::Packet;
using test::Response;

class ResolverTest : public ::testing::Test {
 protected:
  std::shared_ptr<const NameTable> table = NameTable::build(test::sample_spec());
  Query q;
  std::vector<std::uint8_t> out;

  Decision ask(const std::string& name, ldns_rr_type type, std::uint16_t edns = 0) {
    packet = make_query(name, type, edns);
    EXPECT_EQ(parse_query(packet, q), ParseStatus::kOk);
    return resolve(*table, q, out);
  }
  std::vector<std::string> answer(const std::string& name, ldns_rr_type type) {
    EXPECT_EQ(ask(name, type).action, Action::kRespond);
    Response r(Packet(out.begin(), out.end()));
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.rcode(), LDNS_RCODE_NOERROR);
    return r.rdata();
  }
  Packet packet;
};

TEST_F(ResolverTest, EveryNameFormOfAServiceGivesItsAddress) {
  for (const char* name : {"redis", "redis.dev", "redis.dev.svc", "redis.dev.svc.cluster.local",
                           "REDIS.Dev.SVC.Cluster.Local.", "api.other", "api.other.svc"}) {
    const auto rdata = answer(name, LDNS_RR_TYPE_A);
    ASSERT_EQ(rdata.size(), 1u) << name;
    EXPECT_EQ(rdata[0], std::string(name).starts_with("api") ? "127.77.0.13" : "127.77.0.12");
  }
}

TEST_F(ResolverTest, AnswerEchoesTheClientsSpelling) {
  ask("ReDiS.dev", LDNS_RR_TYPE_A);
  Response r(Packet(out.begin(), out.end()));
  EXPECT_EQ(r.answer_strings()[0].substr(0, 10), "ReDiS.dev.");
}

TEST_F(ResolverTest, ShortNamesOfOtherNamespacesAreNotOurs) {
  // "api" lives in "other", not in the session namespace: a pod in dev would not find it.
  EXPECT_EQ(ask("api", LDNS_RR_TYPE_A).action, Action::kForward);
  EXPECT_EQ(ask("redis.com", LDNS_RR_TYPE_A).action, Action::kForward);
  EXPECT_EQ(ask("example.org", LDNS_RR_TYPE_A).action, Action::kForward);
  EXPECT_EQ(ask("12.0.77.127.in-addr.arpa", LDNS_RR_TYPE_A).action, Action::kRespond);
  EXPECT_EQ(ask("1.0.0.127.in-addr.arpa", LDNS_RR_TYPE_PTR).action, Action::kForward);
}

TEST_F(ResolverTest, AaaaForAnExistingNameIsNoDataWithSoa) {
  EXPECT_EQ(ask("redis.dev", LDNS_RR_TYPE_AAAA).action, Action::kRespond);
  Response r(Packet(out.begin(), out.end()));
  EXPECT_EQ(r.rcode(), LDNS_RCODE_NOERROR);
  EXPECT_EQ(r.answers(), 0u);
  EXPECT_EQ(r.authority(), 1u);
}

TEST_F(ResolverTest, SrvForNamedPortsOnly) {
  EXPECT_EQ(answer("_redis._tcp.redis.dev.svc.cluster.local", LDNS_RR_TYPE_SRV),
            std::vector<std::string>{"0 100 6379 redis.dev.svc.cluster.local."});
  EXPECT_EQ(answer("_dns._udp.api.other.svc.cluster.local", LDNS_RR_TYPE_SRV).size(), 1u);
  // The unnamed port has no _port name: that name is unknown, so the cluster is asked.
  EXPECT_EQ(ask("_._tcp.redis.dev.svc.cluster.local", LDNS_RR_TYPE_SRV).action,
            Action::kAskCluster);
  ask("_redis._tcp.redis.dev.svc.cluster.local", LDNS_RR_TYPE_SRV);
  Response r(Packet(out.begin(), out.end()));
  EXPECT_NE(r.answer_strings()[0].find("SRV\t0 100 6379 redis.dev.svc.cluster.local."),
            std::string::npos);
}

TEST_F(ResolverTest, HeadlessServiceGivesOneAddressPerReadyEndpoint) {
  auto a = answer("web.dev.svc.cluster.local", LDNS_RR_TYPE_A);
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, (std::vector<std::string>{"127.77.1.1", "127.77.1.2", "127.77.1.4"}));
  EXPECT_EQ(answer("web-0.web.dev.svc.cluster.local", LDNS_RR_TYPE_A),
            std::vector<std::string>{"127.77.1.1"});
  EXPECT_EQ(answer("127-77-1-4.web.dev.svc.cluster.local", LDNS_RR_TYPE_A),
            std::vector<std::string>{"127.77.1.4"});
  EXPECT_EQ(answer("_http._tcp.web.dev.svc.cluster.local", LDNS_RR_TYPE_SRV).size(), 3u);
  EXPECT_EQ(answer("1.1.77.127.in-addr.arpa", LDNS_RR_TYPE_PTR),
            std::vector<std::string>{"web-0.web.dev.svc.cluster.local."});
  // Not ready: no name, no address.
  EXPECT_EQ(ask("127-77-1-3.web.dev.svc.cluster.local", LDNS_RR_TYPE_A).action,
            Action::kAskCluster);
}

TEST_F(ResolverTest, HeadlessServiceWithoutReadyEndpointsIsNxDomain) {
  ask("empty.dev.svc.cluster.local", LDNS_RR_TYPE_A);
  Response r(Packet(out.begin(), out.end()));
  EXPECT_EQ(r.rcode(), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(r.authority(), 1u);
}

TEST_F(ResolverTest, PtrForPoolAddresses) {
  EXPECT_EQ(answer("12.0.77.127.in-addr.arpa.", LDNS_RR_TYPE_PTR),
            std::vector<std::string>{"redis.dev.svc.cluster.local."});
}

TEST_F(ResolverTest, ExternalNameGivesCnameAndAsksForTheTarget) {
  const Decision d = ask("ext.dev.svc.cluster.local", LDNS_RR_TYPE_A);
  EXPECT_EQ(d.action, Action::kExternal);
  EXPECT_EQ(d.target, std::string("\2db\7example\3org\0", 16));
  EXPECT_EQ(answer("ext.dev", LDNS_RR_TYPE_CNAME), std::vector<std::string>{"db.example.org."});
}

TEST_F(ResolverTest, DnsVersionTxt) {
  EXPECT_EQ(answer("dns-version.cluster.local", LDNS_RR_TYPE_TXT),
            std::vector<std::string>{"\"1.1.0\""});
}

TEST_F(ResolverTest, UnknownNamesOfTheClusterGoToTheClusterResolver) {
  Decision d = ask("nope.dev.svc.cluster.local", LDNS_RR_TYPE_A);
  EXPECT_EQ(d.action, Action::kAskCluster);
  d = ask("nope.other", LDNS_RR_TYPE_A);
  EXPECT_EQ(d.action, Action::kAskCluster);
  EXPECT_EQ(detail::to_presentation(d.target), "nope.other.svc.cluster.local.");
  d = ask("nope.other.svc", LDNS_RR_TYPE_A);
  EXPECT_EQ(detail::to_presentation(d.target), "nope.other.svc.cluster.local.");
}

TEST_F(ResolverTest, OversizedAnswersAreTruncatedForUdp) {
  TableSpec spec = test::sample_spec();
  Service big{.name = "big", .ns = "dev", .headless = true};
  for (int i = 0; i < 60; ++i) {
    big.endpoints.push_back(
        {boost::asio::ip::make_address("127.78.0." + std::to_string(i + 1)), "", true});
  }
  spec.services.push_back(big);
  table = NameTable::build(spec);
  ask("big.dev", LDNS_RR_TYPE_A);
  EXPECT_GT(out.size(), 512u);
  fit_udp(q, out);
  Response r(Packet(out.begin(), out.end()));
  EXPECT_TRUE(ldns_pkt_tc(r.pkt));
  EXPECT_EQ(r.answers(), 0u);
  ask("big.dev", LDNS_RR_TYPE_A, 4096);  // EDNS: the client takes it all
  fit_udp(q, out);
  Response full(Packet(out.begin(), out.end()));
  EXPECT_FALSE(ldns_pkt_tc(full.pkt));
  EXPECT_EQ(full.answers(), 60u);
  EXPECT_EQ(ldns_pkt_edns_udp_size(full.pkt), 1232);
}

// Malformed queries: FORMERR when the header is readable, silence otherwise.
TEST_F(ResolverTest, MalformedQueries) {
  Packet good = make_query("redis", LDNS_RR_TYPE_A);
  struct Case {
    const char* what;
    Packet bytes;
    ParseStatus expect;
  };
  auto with = [&](auto edit) {
    Packet p = good;
    edit(p);
    return p;
  };
  const std::vector<Case> cases = {
      {"empty", {}, ParseStatus::kDrop},
      {"short header", Packet(good.begin(), good.begin() + 11), ParseStatus::kDrop},
      {"a response", with([](Packet& p) { p[2] |= 0x80; }), ParseStatus::kDrop},
      {"qdcount 0", with([](Packet& p) { p[5] = 0; }), ParseStatus::kFormErr},
      {"qdcount 2", with([](Packet& p) { p[5] = 2; }), ParseStatus::kFormErr},
      {"truncated question", Packet(good.begin(), good.end() - 3), ParseStatus::kFormErr},
      {"label past the end", with([](Packet& p) { p[12] = 60; }), ParseStatus::kFormErr},
      {"compressed question", with([](Packet& p) { p[12] = 0xC0; }), ParseStatus::kFormErr},
      {"opcode STATUS", with([](Packet& p) { p[2] |= 2 << 3; }), ParseStatus::kNotImp},
      {"opcode UPDATE", with([](Packet& p) { p[2] |= 5 << 3; }), ParseStatus::kNotImp},
      {"arcount without record", with([](Packet& p) { p[11] = 1; }), ParseStatus::kFormErr},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_query(c.bytes, q), c.expect) << c.what;
    const bool answered = error_response(c.expect, q, out);
    EXPECT_EQ(answered, c.expect != ParseStatus::kDrop) << c.what;
    if (answered) {
      EXPECT_EQ(out[0], c.bytes[0]) << c.what;
      EXPECT_EQ(out[3] & 0xF, c.expect == ParseStatus::kNotImp ? 4 : 1) << c.what;
      EXPECT_TRUE(out[2] & 0x80) << c.what;
    }
  }
}

TEST_F(ResolverTest, EdnsVersionOtherThanZeroIsBadVers) {
  Packet p = make_query("redis", LDNS_RR_TYPE_A, 1232);
  p[p.size() - 5] = 1;  // OPT: name, type, class, then TTL = ext rcode, VERSION, flags
  ASSERT_EQ(parse_query(p, q), ParseStatus::kBadVers);
  ASSERT_TRUE(error_response(ParseStatus::kBadVers, q, out));
  Response r(Packet(out.begin(), out.end()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ldns_pkt_edns_extended_rcode(r.pkt), 1);
}

TEST(NameTableTest, RejectsInvalidNames) {
  TableSpec spec;
  spec.services.push_back(Service{.name = std::string(70, 'a'), .ns = "dev"});
  EXPECT_THROW(NameTable::build(spec), std::invalid_argument);
}

TEST(NameTableTest, JsonForm) {
  const auto spec = parse_table_json(R"({"zone":"example.test","namespace":"ns1","services":[
    {"name":"a","namespace":"ns1","address":"127.77.0.1","ports":[{"name":"p","port":1}]},
    {"name":"h","namespace":"ns1","headless":true,"endpoints":[{"address":"127.77.0.2","hostname":"h0"}]},
    {"name":"e","namespace":"ns1","externalName":"x.test"}]})");
  EXPECT_EQ(spec.zone, "example.test");
  ASSERT_EQ(spec.services.size(), 3u);
  EXPECT_EQ(spec.services[1].endpoints[0].hostname, "h0");
  EXPECT_THROW(parse_table_json(R"({"services":[{"name":"a","address":"nope"}]})"),
               std::invalid_argument);
  EXPECT_THROW(parse_table_json("{"), std::invalid_argument);
}

}  // namespace
}  // namespace lpk::dns
