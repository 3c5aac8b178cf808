#include "dns/upstream.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::dns {
namespace {

namespace asio = boost::asio;

class UpstreamTest : public ::testing::Test {
 protected:
  lpk::test::TempDir dir{"lpk-upstream-"};
  const std::filesystem::path path{dir / "resolv.conf"};
};

TEST_F(UpstreamTest, ReadsNameserversWithOptionalPorts) {
  std::ofstream(path) << "# comment\nsearch example.org\nnameserver 127.0.0.2\n"
                         "nameserver 127.0.0.3#5353\nnameserver ::1\nnameserver bogus\n"
                         "options ndots:2\n";
  const auto servers = read_resolv_conf(path.string());
  ASSERT_EQ(servers.size(), 3u);
  EXPECT_EQ(servers[0], asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.2"), 53));
  EXPECT_EQ(servers[1], asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.3"), 5353));
  EXPECT_EQ(servers[2], asio::ip::udp::endpoint(asio::ip::make_address("::1"), 53));
  EXPECT_THROW(read_resolv_conf("/nonexistent/resolv.conf"), std::runtime_error);
}

TEST_F(UpstreamTest, NeverForwardsToItselfAndFailsFastWithoutServers) {
  std::ofstream(path) << "nameserver 127.0.0.1#5300\n";
  asio::io_context io;
  UpstreamOptions opts;
  opts.resolv_conf = path.string();
  opts.exclude = {asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 5300)};
  Upstream upstream(io, opts);
  EXPECT_TRUE(upstream.servers().empty());
  const test::Packet packet = test::make_query("example.org", LDNS_RR_TYPE_A);
  Query q;
  ASSERT_EQ(parse_query(packet, q), ParseStatus::kOk);
  bool called = false, empty = false;
  upstream.forward(q, [&](std::span<const std::uint8_t> answer) {
    called = true;
    empty = answer.empty();
  });
  EXPECT_FALSE(called);  // never from inside forward()
  io.run_for(std::chrono::seconds(2));
  EXPECT_TRUE(called);
  EXPECT_TRUE(empty);
}

}  // namespace
}  // namespace lpk::dns
