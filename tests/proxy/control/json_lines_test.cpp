// --output json and --log-format json: what each line is made of.
#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

#include <nlohmann/json.hpp>

#include "proxy/control/logging.hpp"
#include "proxy/tunnel/console_line.hpp"

namespace lpk::proxy {
namespace {

using nlohmann::json;

TEST(JsonLines, ConsoleLinesKeepTheirTextAndValues) {
  tunnel::ConsoleLine line{"service", "service {}.{} -> {} ports {}", ""};
  auto text = fmt::format(fmt::runtime(line.format), "redis", "demo", "127.0.0.9", "[6379]");
  auto out = json::parse(tunnel::json_line(
      line.name, text,
      {tunnel::json_value(std::string("redis")), tunnel::json_value(7), tunnel::json_value(true),
       tunnel::json_value(std::string("a \"quoted\"\n\x01 \xff"))}));
  EXPECT_EQ(out["event"], "service");
  EXPECT_EQ(out["text"], "service redis.demo -> 127.0.0.9 ports [6379]");
  EXPECT_EQ(out["values"], json::parse(R"(["redis", 7, true, "a \"quoted\"\n\u0001 \ufffd"])"));
}

TEST(JsonLines, LogLinesAreOneEscapedObjectEach) {
  auto formatter = json_line_formatter();
  std::string payload = "stream 7 closed: \"peer\" said\nbye\t\x02 \xc3";
  spdlog::details::log_msg msg(spdlog::source_loc{}, "lpk-proxy", spdlog::level::warn, payload);
  msg.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1765048846123));
  spdlog::memory_buf_t buf;
  formatter->format(msg, buf);
  std::string line(buf.data(), buf.size());
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line, whatever the message holds
  auto out = json::parse(line);
  EXPECT_EQ(out["ts"], "2025-12-06T19:20:46.123Z");
  EXPECT_EQ(out["level"], "warning");
  EXPECT_EQ(out["msg"], "stream 7 closed: \"peer\" said\nbye\t\x02 \xef\xbf\xbd");
  EXPECT_EQ(out.size(), 3u);
}

}  // namespace
}  // namespace lpk::proxy
