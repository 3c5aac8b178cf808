#include "tools/kubesim/runtime/cluster_dns.hpp"

#include <gtest/gtest.h>

namespace lpk::kubesim {
namespace {

constexpr std::uint16_t kTypeA = 1, kTypeAaaa = 28;

dns::ClusterAnswer ask_pod_name(const std::string& name, std::uint16_t qtype) {
  return pod_answer(name, qtype, "cluster.local",
                    [](const std::string& ns) { return ns == "demo"; });
}

TEST(PodAnswer, Ipv4PodNameIsAnARecord) {
  auto a = ask_pod_name("10-244-0-7.demo.pod.cluster.local.", kTypeA);
  EXPECT_EQ(a.rcode, 0);
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].type, kTypeA);
  EXPECT_EQ(a.records[0].rdata, (std::vector<std::uint8_t>{10, 244, 0, 7}));
  EXPECT_TRUE(
      ask_pod_name("10-244-0-7.demo.pod.cluster.local.", kTypeAaaa).records.empty());  // NODATA
}

TEST(PodAnswer, Ipv6PodNameIsAaaaAndNoDataForA) {
  // CoreDNS's dashed form of fd1a:2b3c:4d00:244::5.
  auto a = ask_pod_name("fd1a-2b3c-4d00-244--5.demo.pod.cluster.local.", kTypeAaaa);
  EXPECT_EQ(a.rcode, 0);
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].type, kTypeAaaa);
  EXPECT_EQ(a.records[0].rdata, (std::vector<std::uint8_t>{0xfd, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x02,
                                                           0x44, 0, 0, 0, 0, 0, 0, 0, 5}));
  auto none = ask_pod_name("fd1a-2b3c-4d00-244--5.demo.pod.cluster.local.", kTypeA);
  EXPECT_EQ(none.rcode, 0);
  EXPECT_TRUE(none.records.empty());
}

TEST(PodAnswer, UnknownNamespaceOrNotAnAddressIsNxDomain) {
  EXPECT_EQ(ask_pod_name("10-244-0-7.other.pod.cluster.local.", kTypeA).rcode, 3);
  EXPECT_EQ(ask_pod_name("web.demo.pod.cluster.local.", kTypeA).rcode, 3);
  EXPECT_EQ(ask_pod_name("a.10-244-0-7.demo.pod.cluster.local.", kTypeA).rcode, 3);
  EXPECT_EQ(ask_pod_name("nothing.demo.svc.cluster.local.", kTypeA).rcode, 3);
}

}  // namespace
}  // namespace lpk::kubesim
