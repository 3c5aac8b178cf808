#include "tools/kubesim/network.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace lpk::kubesim {
namespace {

TEST(ClusterNetwork, Ipv4IsTheRangesKubesimAlwaysHad) {
  auto n = ClusterNetwork::ipv4();
  EXPECT_STREQ(n.family_name(), "IPv4");
  EXPECT_EQ(n.node_ip(), "10.244.0.1");
  EXPECT_EQ(n.pod_prefix_length(), 16);
  EXPECT_EQ(n.pod_ip(258), "10.244.1.2");
  EXPECT_EQ(n.pod_ip(256), std::nullopt);  // .0 and .255 are never handed out
  EXPECT_EQ(n.pod_ip(511), std::nullopt);
  EXPECT_EQ(n.service_cidr(), "10.96.0.0/16");
  EXPECT_EQ(n.kubernetes_ip(), "10.96.0.1");
  EXPECT_EQ(n.dns_ip(), "10.96.0.10");
}

TEST(ClusterNetwork, Ipv6RangesSitInTheInstancesUlaPrefix) {
  auto n = ClusterNetwork::ipv6("1a2b3c4d");
  EXPECT_STREQ(n.family_name(), "IPv6");
  EXPECT_EQ(n.node_ip(), "fd1a:2b3c:4d00:244::1");
  EXPECT_EQ(n.pod_prefix_length(), 64);
  EXPECT_EQ(n.pod_ip(256), "fd1a:2b3c:4d00:244::100");  // every offset is usable
  EXPECT_EQ(n.pod_ip(0x10000), "fd1a:2b3c:4d00:244::1:0");
  EXPECT_EQ(n.service_cidr(), "fd1a:2b3c:4d00:96::/112");
  EXPECT_EQ(n.kubernetes_ip(), "fd1a:2b3c:4d00:96::1");
  EXPECT_EQ(n.dns_ip(), "fd1a:2b3c:4d00:96::a");   // canonical text: lower case, compressed
  EXPECT_EQ(n.service_ip(0x10000), std::nullopt);  // past the /112
}

TEST(ClusterNetwork, TwoInstancesNeverShareAnAddress) {
  auto a = ClusterNetwork::ipv6("00000001"), b = ClusterNetwork::ipv6("00000002");
  EXPECT_NE(a.node_ip(), b.node_ip());
  EXPECT_NE(a.kubernetes_ip(), b.kubernetes_ip());
  EXPECT_THROW(ClusterNetwork::ipv6("xyz"), std::invalid_argument);
}

TEST(ClusterNetwork, FamiliesByName) {
  EXPECT_EQ(ClusterNetwork::parse_family("ipv6"), IpFamily::ipv6);
  EXPECT_EQ(ClusterNetwork::parse_family("ipv4"), IpFamily::ipv4);
  EXPECT_EQ(ClusterNetwork::parse_family("IPv6"), std::nullopt);
  EXPECT_EQ(ClusterNetwork::family_of("fd00::1"), "IPv6");
  EXPECT_EQ(ClusterNetwork::family_of("10.0.0.1"), "IPv4");
  EXPECT_EQ(ClusterNetwork::family_of("None"), "");
}

}  // namespace
}  // namespace lpk::kubesim
