#include "proxy/forward/service_map.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

namespace lpk::proxy {
namespace {

using tunnel::Target;

// The message of the std::invalid_argument that `f` throws ("" if it does not throw).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

void expect_one_line_naming(const std::string& message, const std::string& culprit) {
  EXPECT_FALSE(message.empty()) << "expected an error naming " << culprit;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(culprit), std::string::npos) << message;
}

TEST(ServiceMap, ServiceNameToDnsTarget) {
  auto m = parse_mapping("redis:6379=redis-master.dev.svc.cluster.local:6379");
  EXPECT_EQ(m.name, "redis");
  EXPECT_FALSE(m.address);
  EXPECT_EQ(m.port, 6379);
  EXPECT_EQ(m.target, (Target{Target::Kind::name, "redis-master.dev.svc.cluster.local", 6379}));
}

TEST(ServiceMap, AddressToIpv4Target) {
  auto m = parse_mapping("127.0.0.1:0=10.96.0.10:53");
  EXPECT_TRUE(m.name.empty());
  ASSERT_TRUE(m.address);
  EXPECT_EQ(m.address->to_string(), "127.0.0.1");
  EXPECT_EQ(m.port, 0) << "port 0 (ephemeral) is allowed for an explicit address";
  EXPECT_EQ(m.target, (Target{Target::Kind::ipv4, "10.96.0.10", 53}));
}

TEST(ServiceMap, UdpSuffixMakesADatagramTarget) {
  auto m = parse_mapping("127.0.0.1:5353=kube-dns.kube-system:53/udp");
  EXPECT_EQ(m.port, 5353);
  EXPECT_EQ(m.target, (Target{Target::Kind::name, "kube-dns.kube-system", 53, true}));
  EXPECT_EQ(m.target.to_string(), "kube-dns.kube-system:53/udp");
  EXPECT_FALSE(parse_mapping("dns:53=10.96.0.10:53").target.datagram);
  EXPECT_THROW(parse_mapping("dns:53=10.96.0.10:53/tcp"), std::invalid_argument);
}

TEST(ServiceMap, Ipv6InBracketsOnBothSides) {
  auto m = parse_mapping("[::1]:8080=[2001:db8::10]:443");
  ASSERT_TRUE(m.address);
  EXPECT_TRUE(m.address->is_v6());
  EXPECT_EQ(m.address->to_string(), "::1");
  EXPECT_EQ(m.port, 8080);
  EXPECT_EQ(m.target, (Target{Target::Kind::ipv6, "2001:db8::10", 443}));
  // The target's text is canonical, whatever way it was written.
  EXPECT_EQ(parse_target("[2001:DB8:0:0::10]:443").host, "2001:db8::10");
  EXPECT_EQ(parse_mapping("web:80=[::ffff:10.0.0.1]:80").target.kind, Target::Kind::ipv6);
}

TEST(ServiceMap, NamesWithDotsDashesUnderscores) {
  auto m = parse_mapping("my_svc.ns-1:443=host_1.example-2.org:8443");
  EXPECT_EQ(m.name, "my_svc.ns-1");
  EXPECT_EQ(m.target.kind, Target::Kind::name);
  EXPECT_EQ(m.target.host, "host_1.example-2.org");
}

TEST(ServiceMap, ErrorsAreOneLineAndNameTheProblem) {
  expect_one_line_naming(error_of([] { parse_mapping("redis:6379"); }), "redis:6379");
  expect_one_line_naming(error_of([] { parse_mapping("redis=host:1"); }), "redis");
  expect_one_line_naming(error_of([] { parse_mapping("redis:abc=host:1"); }), "abc");
  expect_one_line_naming(error_of([] { parse_mapping("redis:70000=host:1"); }), "70000");
  expect_one_line_naming(error_of([] { parse_mapping("redis:0=host:1"); }), "'0'");
  expect_one_line_naming(error_of([] { parse_mapping("redis:-1=host:1"); }), "-1");
  expect_one_line_naming(error_of([] { parse_mapping("redis:1=host:0"); }), "'0'");
  expect_one_line_naming(error_of([] { parse_mapping("redis:1=host:"); }), "''");
  expect_one_line_naming(error_of([] { parse_mapping("redis:1=host"); }), "host");
  expect_one_line_naming(error_of([] { parse_mapping("re dis:1=host:1"); }), "re dis");
  expect_one_line_naming(error_of([] { parse_mapping("redis:1=bad/host:1"); }), "bad/host");
  expect_one_line_naming(error_of([] { parse_mapping("redis:1=[]:1"); }), "[]");
  expect_one_line_naming(error_of([] { parse_mapping(":1=host:1"); }), ":1");
  expect_one_line_naming(error_of([] { parse_mapping(""); }), "expected");
  EXPECT_NE(error_of([] { parse_mapping("redis:1=host:1x"); }), "");
  EXPECT_NE(error_of([] { parse_mapping("redis:1=" + std::string(300, 'h') + ":1"); }), "");
}

TEST(ServiceMap, FileWithCommentsBlankLinesAndCrlf) {
  std::istringstream in(
      "# services of the dev namespace\n"
      "\n"
      "redis:6379=redis-master:6379   # the cache\n"
      "   \t\n"
      "127.0.0.1:0=10.0.0.5:80\r\n"
      "  web:80=[::1]:8080  \n");
  auto maps = parse_mapping_file(in, "dev.map");
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps[0].name, "redis");
  EXPECT_EQ(maps[1].target.host, "10.0.0.5");
  EXPECT_EQ(maps[2].target, (Target{Target::Kind::ipv6, "::1", 8080}));
  std::istringstream empty("# nothing\n\n");
  EXPECT_TRUE(parse_mapping_file(empty, "empty.map").empty());
}

TEST(ServiceMap, FileErrorsNameThePathAndLine) {
  std::istringstream in(
      "# ok so far\n"
      "redis:6379=redis:6379\n"
      "web:80=web\n");
  auto message = error_of([&] { parse_mapping_file(in, "/etc/lpk/dev.map"); });
  expect_one_line_naming(message, "/etc/lpk/dev.map:3: ");
  EXPECT_NE(message.find("'web'"), std::string::npos) << message;
}

TEST(InboundRoutes, PortAndLocalRemotePairs) {
  InboundRoutes r;
  EXPECT_FALSE(r.local_port_for(80));
  r.add("8080:80");
  r.add("9443:443");
  EXPECT_EQ(r.local_port_for(80), 8080);
  EXPECT_EQ(r.local_port_for(443), 9443);
  EXPECT_FALSE(r.local_port_for(22)) << "no catch-all yet";
  r.add("3000");
  EXPECT_EQ(r.local_port_for(22), 3000);
  EXPECT_EQ(r.local_port_for(80), 8080) << "a specific route beats the catch-all";
  r.add("8081:80");
  EXPECT_EQ(r.local_port_for(80), 8081) << "the last route for a port wins";
}

TEST(InboundRoutes, BadSpecsAreOneLineErrors) {
  for (const char* spec : {"", "0", "abc", "8080:", ":80", "1:2:3", "70000", "80:0", "-5"}) {
    InboundRoutes r;
    auto message = error_of([&] { r.add(spec); });
    EXPECT_FALSE(message.empty()) << spec;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace lpk::proxy
