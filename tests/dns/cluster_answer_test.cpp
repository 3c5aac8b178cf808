// The messages lpk exchanges with the cluster's DNS through the agent: the query it builds, the
// question match, and the answer parser on malformed packets.
#include "dns/cluster_answer.hpp"

#include <gtest/gtest.h>

namespace lpk::dns {
namespace {

using Bytes = std::vector<std::uint8_t>;

TEST(ClusterAnswer, MalformedPacketsAndBadNames) {
  EXPECT_FALSE(parse_cluster_answer(Bytes{1, 2, 3}));
  auto q = make_cluster_query(0x1234, "api.demo.svc.cluster.local", 1);
  ASSERT_FALSE(q.empty());
  EXPECT_EQ(q[0], 0x12);
  EXPECT_EQ(q[2], 0x01);  // RD
  // A query parses as a packet with no answers.
  auto parsed = parse_cluster_answer(q);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->records.empty());
  // Cut in the middle of the question: not a packet.
  EXPECT_FALSE(parse_cluster_answer(Bytes(q.begin(), q.begin() + 20)));
  EXPECT_TRUE(make_cluster_query(1, "a..b", 1).empty());
  EXPECT_TRUE(make_cluster_query(1, std::string(64, 'a') + ".test", 1).empty());
  EXPECT_FALSE(make_cluster_query(1, "trailing.dot.", 1).empty());
}

TEST(ClusterAnswer, AnAnswerMatchesItsQuestionInAnyCase) {
  auto q = make_cluster_query(7, "api.demo.svc.cluster.local", 1);
  auto upper = make_cluster_query(7, "API.Demo.svc.cluster.local", 1);
  auto other = make_cluster_query(7, "web.demo.svc.cluster.local", 1);
  auto aaaa = make_cluster_query(7, "api.demo.svc.cluster.local", 28);
  EXPECT_TRUE(answers_question(upper, q));
  EXPECT_FALSE(answers_question(other, q));
  EXPECT_FALSE(answers_question(aaaa, q)) << "the type is part of the question";
  EXPECT_FALSE(answers_question(Bytes(q.begin(), q.begin() + 14), q));
  EXPECT_EQ(question_size(Bytes{1, 2, 3}), 0u);
}

}  // namespace
}  // namespace lpk::dns
