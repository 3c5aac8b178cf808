// open_listener: the one listen/bind/describe sequence of the agent and the proxy.
#include "proxy/tunnel/listen.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace lpk::tunnel {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

/// True when this machine can use ::1 at all (a kernel without IPv6, or lo without ::1).
bool have_ipv6_loopback() {
  asio::io_context io;
  tcp::acceptor probe(io);
  boost::system::error_code ec;
  probe.open(tcp::v6(), ec);
  if (!ec) probe.bind({asio::ip::address_v6::loopback(), 0}, ec);
  return !ec;
}

TEST(OpenListener, EveryAddressOfIPv6IsDualStack) {
  // The agent's default --serve-address "::" must take IPv4 connections too (a pod of a
  // dual-stack or IPv4 cluster) and IPv6 ones (IPv6 single-stack clusters). Only loopback
  // connections are made.
  if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  asio::io_context io;
  auto acceptor = open_listener(io.get_executor(), {asio::ip::address_v6::any(), 0}, {});
  ASSERT_TRUE(acceptor) << acceptor.error().message;
  const auto port = acceptor->local_endpoint().port();
  for (const char* address : {"127.0.0.1", "::1"}) {
    tcp::socket client(io);
    boost::system::error_code ec;
    client.connect({asio::ip::make_address(address), port}, ec);
    EXPECT_FALSE(ec) << address << ": " << ec.message();
    tcp::socket accepted(io);
    acceptor->accept(accepted, ec);
    EXPECT_FALSE(ec) << address;
  }
}

TEST(OpenListener, APortInUseIsOneLineNamingTheAddressAndTheHint) {
  asio::io_context io;
  auto first = open_listener(io.get_executor(), {asio::ip::address_v4::loopback(), 0}, {});
  ASSERT_TRUE(first);
  auto taken = first->local_endpoint();
  // Another socket on the same port (reuse_address does not allow two listeners).
  auto second = open_listener(io.get_executor(), taken, {.in_use = "choose another port"});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find(std::to_string(taken.port())), std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find("choose another port"), std::string::npos)
      << second.error().message;
  EXPECT_EQ(second.error().message.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace lpk::tunnel
