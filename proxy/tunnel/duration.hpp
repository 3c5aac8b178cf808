#pragma once
// Values on the command line of both ends: durations (--dead-link-timeout, --resume-grace): `15`
// or `1.5` (seconds), or with a unit: `500ms`, `15s`, `2m`, `1h`; port numbers.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lpk::tunnel {

/// nullopt for anything else: no number, a negative one, an unknown unit, trailing text.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// A port number 0-65535 in decimal; nullopt for anything else (a sign, spaces, trailing text).
std::optional<std::uint16_t> parse_port_number(std::string_view text);

/// `--dead-link-timeout` of either end (SessionOptions::dead_link_timeout): 100 ms to 1 hour.
/// Throws std::invalid_argument with the one line both commands print.
std::chrono::milliseconds parse_dead_link_timeout(std::string_view text);

/// `--resume-grace` of either end (SessionOptions::resume_grace): 1 s to 24 hours.
std::chrono::milliseconds parse_resume_grace(std::string_view text);

}  // namespace lpk::tunnel
