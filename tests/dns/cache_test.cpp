#include "dns/detail/cache.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace lpk::dns::detail {
namespace {

using test::make_query;
using test::Packet;
using test::Response;

Packet wire(ldns_pkt* p) {
  std::uint8_t* w = nullptr;
  std::size_t n = 0;
  ldns_pkt2wire(&w, p, &n);
  Packet out(w, w + n);
  free(w);
  ldns_pkt_free(p);
  return out;
}

struct Exchange {
  Packet query;
  Query q;
  Packet response;
  Exchange(const std::string& name, ldns_pkt_rcode rc, std::vector<std::string> answers,
           std::vector<std::string> authority = {}) {
    query = make_query(name, LDNS_RR_TYPE_A);
    ldns_pkt* parsed = nullptr;
    ldns_wire2pkt(&parsed, query.data(), query.size());
    response = wire(test::reply(parsed, rc, answers, authority));
    ldns_pkt_free(parsed);
    EXPECT_EQ(parse_query(query, q), ParseStatus::kOk);
  }
};

const char* kSoa = "example.org. 3600 IN SOA ns.example.org. h.example.org. 1 2 3 4 30";

TEST(CacheTtl, PositiveAnswersLiveForTheirSmallestTtl) {
  Exchange e("a.example.org", LDNS_RCODE_NOERROR,
             {"a.example.org. 300 IN A 127.0.0.1", "a.example.org. 60 IN A 127.0.0.2"});
  std::vector<std::uint16_t> offsets;
  EXPECT_EQ(Cache::cache_ttl(e.response, &offsets), 60u);
  EXPECT_EQ(offsets.size(), 2u);
}

TEST(CacheTtl, NegativeAnswersLiveForTheSoaMinimum) {
  Exchange nx("b.example.org", LDNS_RCODE_NXDOMAIN, {}, {kSoa});
  EXPECT_EQ(Cache::cache_ttl(nx.response, nullptr), 30u);  // min(SOA TTL 3600, MINIMUM 30)
  Exchange nodata("b.example.org", LDNS_RCODE_NOERROR, {},
                  {"example.org. 10 IN SOA ns.example.org. h.example.org. 1 2 3 4 30"});
  EXPECT_EQ(Cache::cache_ttl(nodata.response, nullptr), 10u);
  Exchange no_soa("b.example.org", LDNS_RCODE_NXDOMAIN, {});
  EXPECT_FALSE(Cache::cache_ttl(no_soa.response, nullptr));
}

TEST(CacheTtl, FailuresAndTruncatedAnswersAreNotCached) {
  Exchange fail("c.example.org", LDNS_RCODE_SERVFAIL, {}, {kSoa});
  EXPECT_FALSE(Cache::cache_ttl(fail.response, nullptr));
  Exchange tc("c.example.org", LDNS_RCODE_NOERROR, {"c.example.org. 300 IN A 127.0.0.1"});
  tc.response[2] |= 0x02;
  EXPECT_FALSE(Cache::cache_ttl(tc.response, nullptr));
  EXPECT_FALSE(Cache::cache_ttl(Packet(tc.response.begin(), tc.response.begin() + 20), nullptr));
}

class CacheTest : public ::testing::Test {
 protected:
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  Cache cache{[this] { return now; }, 100};
};

TEST_F(CacheTest, HitPatchesIdSpellingAndAgesTtls) {
  Exchange e("a.example.org", LDNS_RCODE_NOERROR, {"a.example.org. 300 IN A 127.0.0.1"});
  cache.store(e.q, e.response);
  now += std::chrono::seconds(100);
  Packet other = make_query("A.EXAMPLE.org", LDNS_RR_TYPE_A, 0, 0x4242);
  Query q;
  ASSERT_EQ(parse_query(other, q), ParseStatus::kOk);
  std::vector<std::uint8_t> out;
  ASSERT_TRUE(cache.lookup(q, out));
  Response r(Packet(out.begin(), out.end()));
  EXPECT_EQ(ldns_pkt_id(r.pkt), 0x4242);
  EXPECT_EQ(r.answer_strings()[0], "A.EXAMPLE.org.\t200\tIN\tA\t127.0.0.1");
  EXPECT_EQ(test::qname(r.pkt), "A.EXAMPLE.org.");  // the answer points at the question
}

TEST_F(CacheTest, EntriesExpireWithTheirTtl) {
  Exchange e("a.example.org", LDNS_RCODE_NOERROR, {"a.example.org. 60 IN A 127.0.0.1"});
  cache.store(e.q, e.response);
  std::vector<std::uint8_t> out;
  now += std::chrono::seconds(59);
  EXPECT_TRUE(cache.lookup(e.q, out));
  now += std::chrono::seconds(1);
  EXPECT_FALSE(cache.lookup(e.q, out));
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(CacheTest, KeyedOnTypeAndEdns) {
  Exchange e("a.example.org", LDNS_RCODE_NOERROR, {"a.example.org. 60 IN A 127.0.0.1"});
  cache.store(e.q, e.response);
  std::vector<std::uint8_t> out;
  Packet aaaa = make_query("a.example.org", LDNS_RR_TYPE_AAAA);
  Packet edns = make_query("a.example.org", LDNS_RR_TYPE_A, 1232);
  Query q;
  parse_query(aaaa, q);
  EXPECT_FALSE(cache.lookup(q, out));
  parse_query(edns, q);
  EXPECT_FALSE(cache.lookup(q, out));
}

TEST_F(CacheTest, StaysBounded) {
  for (int i = 0; i < 250; ++i) {
    Exchange e("n" + std::to_string(i) + ".example.org", LDNS_RCODE_NOERROR,
               {"n" + std::to_string(i) + ".example.org. 60 IN A 127.0.0.1"});
    cache.store(e.q, e.response);
  }
  EXPECT_LE(cache.size(), 100u);
}

}  // namespace
}  // namespace lpk::dns::detail
