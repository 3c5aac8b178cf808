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
  } else {
    return std::nullopt;
  }
  double ms = value * ms_per_unit;
  if (ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(std::llround(ms));
}

std::chrono::milliseconds parse_dead_link_timeout(std::string_view text) {
  using namespace std::chrono_literals;
  auto d = parse_duration(text);
  if (!d || *d < 100ms || *d > 1h) {
    throw std::invalid_argument("--dead-link-timeout wants a duration from 100ms to 60m, such as "
                                "15 or 15s or 500ms, got '" + std::string(text) + "'");
  }
  return *d;
}

std::chrono::milliseconds parse_resume_grace(std::string_view text) {
  using namespace std::chrono_literals;
  auto d = parse_duration(text);
  if (!d || *d < 1s || *d > 24h) {
    throw std::invalid_argument("--resume-grace wants a duration from 1s to 24h, such as 60 or "
                                "60s or 5m, got '" + std::string(text) + "'");
  }
  return *d;
}

}  // namespace lpk::tunnel
