#include "agent/router/h2_settings.hpp"

#include <gtest/gtest.h>

#include <string>

#include "agent/router/h2_sniff.hpp"

namespace lpk::router {
namespace {

using namespace std::string_literals;

std::string frame(std::uint8_t type, std::uint8_t flags, std::string payload, std::uint32_t stream = 0) {
  std::string f;
  f += char(payload.size() >> 16);
  f += char(payload.size() >> 8);
  f += char(payload.size());
  f += char(type);
  f += char(flags);
  f += char(stream >> 24);
  f += char(stream >> 16);
  f += char(stream >> 8);
  f += char(stream);
  return f + payload;
}

// A client's stream: preface, SETTINGS, WINDOW_UPDATE, HEADERS whose payload holds bytes that
// look like a SETTINGS ACK, the ACK of the router's SETTINGS, DATA, then its ACK of the
// backend's SETTINGS (which must pass).
const std::string kAck = frame(0x4, 0x1, "");
const std::string kBefore = std::string(kH2Preface) + frame(0x4, 0, "\0\x03\0\0\0\x64"s) +
                            frame(0x8, 0, "\0\0\xff\xff"s) + frame(0x1, 0x4, kAck + "xyz", 1);
const std::string kAfter = frame(0x0, 0x1, "payload", 1) + kAck;

TEST(SettingsAckFilter, DropsOnlyTheFirstAckAtEverySplitPoint) {
  const std::string stream = kBefore + kAck + kAfter;
  for (std::size_t k = 0; k <= stream.size(); ++k) {
    SettingsAckFilter filter;
    std::string passed, pending;
    for (auto piece : {stream.substr(0, k), stream.substr(k)}) {
      pending += piece;
      auto step = filter.scan(pending);
      passed += pending.substr(0, step.pass);
      pending.erase(0, step.pass + (step.found ? 9 : 0));
      if (filter.found()) {
        passed += pending;  // everything after passes unchanged
        pending.clear();
      }
    }
    ASSERT_TRUE(filter.found()) << k;
    EXPECT_EQ(passed, kBefore + kAfter) << k;
  }
}

TEST(SettingsAckFilter, PassesEverythingWhileNoAckCame) {
  SettingsAckFilter filter;
  auto step = filter.scan(kBefore);
  EXPECT_FALSE(step.found);
  EXPECT_EQ(step.pass, kBefore.size());
  auto partial = filter.scan(kAck.substr(0, 5));
  EXPECT_EQ(partial.pass, 0u);  // a frame header is judged whole
  EXPECT_FALSE(filter.found());
}

TEST(SettingsAckFilter, TheRoutersSettingsFrameIsAnEmptySettings) {
  ASSERT_EQ(kEmptySettingsFrame.size(), 9u);
  EXPECT_EQ(std::string(kEmptySettingsFrame), frame(0x4, 0, ""));
}

}  // namespace
}  // namespace lpk::router
