#include "kube/text.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lpk::text {
namespace {

TEST(Base64, KnownVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(Base64, RoundTripAndRejects) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_decode("YWJj\nZA=="), "abcd");  // newlines are skipped as Go does
  EXPECT_FALSE(base64_decode("YWJ"));
  EXPECT_FALSE(base64_decode("YW=j"));
  EXPECT_FALSE(base64_decode("YWJ!"));
  EXPECT_FALSE(base64_decode("Zg=a"));  // data after padding
}

TEST(AsciiCase, FoldsOnlyAsciiLetters) {
  EXPECT_EQ(ascii_lower("Redis.DEMO.svc"), "redis.demo.svc");
  EXPECT_EQ(ascii_upper("redis-main_1"), "REDIS-MAIN_1");
  EXPECT_EQ(ascii_lower(std::string("\xC9T\xE9", 3)), std::string("\xC9t\xE9", 3));
  EXPECT_TRUE(iequals("DNS.LPK.Internal", "dns.lpk.internal"));
  EXPECT_FALSE(iequals("dns.lpk.internal", "dns.lpk.internal."));
  EXPECT_FALSE(iequals("a", "b"));
}

}  // namespace
}  // namespace lpk::text
