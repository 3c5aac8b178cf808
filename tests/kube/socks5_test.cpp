#include "kube/detail/socks5.hpp"

#include <gtest/gtest.h>

#include "kube/detail/server_url.hpp"

namespace lpk::kube::detail {
namespace {

using Bytes = std::vector<std::uint8_t>;

TEST(Socks5, GreetingOffersPasswordOnlyWithCredentials) {
  EXPECT_EQ(socks5::encode_greeting(false), (Bytes{5, 1, 0}));
  EXPECT_EQ(socks5::encode_greeting(true), (Bytes{5, 2, 0, 2}));
}

TEST(Socks5, MethodChoice) {
  EXPECT_EQ(socks5::parse_method_choice(Bytes{5, 0}, false).error, "");
  auto password = socks5::parse_method_choice(Bytes{5, 2}, true);
  EXPECT_EQ(password.error, "");
  EXPECT_EQ(password.method, socks5::kUserPassword);
  // Password chosen though not offered, a refusal, another version, too short.
  EXPECT_NE(socks5::parse_method_choice(Bytes{5, 2}, false).error, "");
  EXPECT_NE(socks5::parse_method_choice(Bytes{5, 0xff}, false).error.find("user:password@"),
            std::string::npos);
  EXPECT_NE(socks5::parse_method_choice(Bytes{4, 0}, false).error, "");
  EXPECT_NE(socks5::parse_method_choice(Bytes{5}, false).error, "");
  EXPECT_NE(socks5::parse_method_choice(Bytes{5, 1}, true).error, "");  // GSSAPI
}

TEST(Socks5, PasswordRequestAndStatus) {
  EXPECT_EQ(*socks5::encode_password("ab", "xyz"), (Bytes{1, 2, 'a', 'b', 3, 'x', 'y', 'z'}));
  EXPECT_EQ(*socks5::encode_password("u", ""), (Bytes{1, 1, 'u', 0}));
  EXPECT_FALSE(socks5::encode_password("", "pw"));
  EXPECT_FALSE(socks5::encode_password(std::string(256, 'u'), "pw"));
  EXPECT_FALSE(socks5::encode_password("u", std::string(256, 'p')));
  EXPECT_EQ(socks5::parse_password_status(Bytes{1, 0}), "");
  EXPECT_NE(socks5::parse_password_status(Bytes{1, 1}).find("wrong username or password"),
            std::string::npos);
  EXPECT_NE(socks5::parse_password_status(Bytes{5, 0}), "");
  EXPECT_NE(socks5::parse_password_status(Bytes{}), "");
}

TEST(Socks5, ConnectSendsAddressesAsAddressesAndNamesAsNames) {
  EXPECT_EQ(*socks5::encode_connect("127.0.0.1", 6443),
            (Bytes{5, 1, 0, 1, 127, 0, 0, 1, 0x19, 0x2b}));
  auto v6 = *socks5::encode_connect("::1", 443);
  ASSERT_EQ(v6.size(), 4u + 16 + 2);
  EXPECT_EQ(v6[3], 4);
  EXPECT_EQ(v6[19], 1);
  EXPECT_EQ(
      *socks5::encode_connect("api.example", 443),
      (Bytes{5, 1, 0, 3, 11, 'a', 'p', 'i', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', 1, 0xbb}));
  EXPECT_FALSE(socks5::encode_connect("", 443));
  EXPECT_FALSE(socks5::encode_connect(std::string(256, 'a'), 443));
}

TEST(Socks5, ConnectReplySizeFollowsTheAddressType) {
  EXPECT_EQ(socks5::parse_connect_reply(Bytes{5, 0, 0, 1, 127}).size, 10u);
  EXPECT_EQ(socks5::parse_connect_reply(Bytes{5, 0, 0, 4, 0}).size, 22u);
  EXPECT_EQ(socks5::parse_connect_reply(Bytes{5, 0, 0, 3, 7}).size, 4u + 1 + 7 + 2);
  EXPECT_EQ(socks5::parse_connect_reply(Bytes{5, 0, 0, 3, 0}).size, 7u);
}

TEST(Socks5, ConnectReplyRefusalsAndMalformedReplies) {
  auto refused = socks5::parse_connect_reply(Bytes{5, 2, 0, 1, 0});
  EXPECT_EQ(refused.error, "connection not allowed by ruleset (reply 2)");
  EXPECT_EQ(socks5::parse_connect_reply(Bytes{5, 5, 0, 1, 0}).error,
            "connection refused (reply 5)");
  EXPECT_NE(socks5::parse_connect_reply(Bytes{5, 99, 0, 1, 0}).error.find("99"), std::string::npos);
  EXPECT_NE(socks5::parse_connect_reply(Bytes{4, 0, 0, 1, 0}).error, "");  // version
  EXPECT_NE(socks5::parse_connect_reply(Bytes{5, 0, 1, 1, 0}).error, "");  // reserved
  EXPECT_NE(socks5::parse_connect_reply(Bytes{5, 0, 0, 9, 0}).error, "");  // address type
  EXPECT_NE(socks5::parse_connect_reply(Bytes{5, 0, 0, 1}).error, "");     // truncated
  EXPECT_NE(socks5::parse_connect_reply(Bytes{}).error, "");
}

TEST(ProxyUrl, SchemesPortsAndCredentials) {
  auto s = *parse_proxy_url("socks5://us%40er:p%3Aw@127.0.0.1");
  EXPECT_EQ(s.scheme, "socks5");
  EXPECT_EQ(s.port, 1080);
  EXPECT_EQ(*s.user, "us@er");
  EXPECT_EQ(s.password, "p:w");
  EXPECT_EQ(s.display(), "socks5://127.0.0.1:1080");
  EXPECT_EQ(parse_proxy_url("socks5h://h:9")->scheme, "socks5");
  EXPECT_EQ(parse_proxy_url("https://proxy.test")->port, 443);
  EXPECT_EQ(parse_proxy_url("HTTP://proxy.test")->port, 80);
  auto bare = *parse_proxy_url("10.0.0.1:3128");  // the environment's form: http
  EXPECT_EQ(bare.scheme, "http");
  EXPECT_EQ(bare.port, 3128);
  EXPECT_FALSE(bare.user);
  auto v6 = *parse_proxy_url("http://[::1]:8080/");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.host_port(), "[::1]:8080");
  EXPECT_EQ(parse_proxy_url("http://[::1]")->port, 80);
  EXPECT_EQ(*parse_proxy_url("http://user@h:1")->user, "user");
}

TEST(ProxyUrl, RejectsWhatCannotBeDialed) {
  EXPECT_FALSE(parse_proxy_url("ftp://h:1"));
  EXPECT_FALSE(parse_proxy_url("socks4://h:1"));
  EXPECT_FALSE(parse_proxy_url("http://h:99999"));
  EXPECT_FALSE(parse_proxy_url("http://h/path"));
  EXPECT_FALSE(parse_proxy_url("http://u:p%zz@h:1"));
  EXPECT_FALSE(parse_proxy_url("http://u:p%4@h:1"));
  EXPECT_FALSE(parse_proxy_url("http://"));
}

}  // namespace
}  // namespace lpk::kube::detail
