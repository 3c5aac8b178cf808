#include "proxy/tunnel/duration.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>

namespace lpk::tunnel {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value,
                                   std::chars_format::fixed);
  if (ec != std::errc() || end == text.data() || !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  std::string_view unit(end, text.data() + text.size() - end);
  double ms_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else {
    return std::nullopt;
  }
  double ms = value * ms_per_unit;
  if (ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(std::llround(ms));
}

namespace {

// A duration flag within [least, most]; else the one line both commands print.
std::chrono::milliseconds parse_bounded(std::string_view flag, std::string_view text,
                                        std::chrono::milliseconds least,
                                        std::chrono::milliseconds most,
                                        std::string_view range_and_examples) {
  auto d = parse_duration(text);
  if (!d || *d < least || *d > most) {
    throw std::invalid_argument(std::string(flag) + " wants a duration from " +
                                std::string(range_and_examples) + ", got '" + std::string(text) +
                                "'");
  }
  return *d;
}

}  // namespace

std::chrono::milliseconds parse_dead_link_timeout(std::string_view text) {
  using namespace std::chrono_literals;
  return parse_bounded("--dead-link-timeout", text, 100ms, 1h,
                       "100ms to 60m, such as 15 or 15s or 500ms");
}

std::chrono::milliseconds parse_resume_grace(std::string_view text) {
  using namespace std::chrono_literals;
  return parse_bounded("--resume-grace", text, 1s, 24h, "1s to 24h, such as 60 or 60s or 5m");
}

std::optional<std::uint16_t> parse_port_number(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + unsigned(c - '0');
  }
  if (port > 65535) return std::nullopt;
  return std::uint16_t(port);
}

}  // namespace lpk::tunnel
