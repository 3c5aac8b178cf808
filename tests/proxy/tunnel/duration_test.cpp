// The command-line durations and ports both ends parse (tunnel/duration.hpp).
#include "proxy/tunnel/duration.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace lpk::tunnel {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, PlainNumbersAreSecondsAndUnitsScale) {
  EXPECT_EQ(parse_duration("15"), milliseconds(15'000));
  EXPECT_EQ(parse_duration("1.5"), milliseconds(1'500));
  EXPECT_EQ(parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(parse_duration("15s"), milliseconds(15'000));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parse_duration("0.5h"), milliseconds(1'800'000));
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
}

TEST(ParseDuration, AnythingElseIsRefused) {
  for (const char* bad : {"", "s", "-1", "1d", "1 s", "1s ", "one", "1e3", "inf", "nan", "2hh",
                          "99999999999h"}) {
    EXPECT_EQ(parse_duration(bad), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ParseDuration, BoundedFlagsKeepTheirRanges) {
  EXPECT_EQ(parse_dead_link_timeout("1h"), milliseconds(3'600'000));
  EXPECT_THROW(parse_dead_link_timeout("2h"), std::invalid_argument);
  EXPECT_THROW(parse_dead_link_timeout("50ms"), std::invalid_argument);
  EXPECT_EQ(parse_resume_grace("24h"), milliseconds(24 * 3'600'000));
  EXPECT_THROW(parse_resume_grace("25h"), std::invalid_argument);
}

TEST(ParsePortNumber, DecimalZeroTo65535Only) {
  EXPECT_EQ(parse_port_number("0"), 0);
  EXPECT_EQ(parse_port_number("65535"), 65535);
  for (const char* bad : {"", "65536", "-1", "+1", " 1", "1 ", "0x10", "80a"}) {
    EXPECT_EQ(parse_port_number(bad), std::nullopt) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace lpk::tunnel
