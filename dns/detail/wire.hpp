#pragma once
// Small, allocation-free helpers for DNS wire format (RFC 1035 section 4). Pure functions over
// byte spans; no I/O and no logging, so the UDP hot path and the fuzz target can use them.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lpk::dns::detail {

using Bytes = std::span<const std::uint8_t>;

constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxNameWire = 255;
constexpr std::uint16_t kPointerToQuestion = 0xC00C;  // compression pointer to offset 12
constexpr std::uint16_t kTypeCname = 5, kTypeSoa = 6, kTypeOpt = 41, kTypeAny = 255;
constexpr std::uint16_t kClassIn = 1, kClassAny = 255;
// Header flag bits (RFC 1035 4.1.1, RFC 4035 3.2 for CD).
constexpr std::uint16_t kFlagQr = 0x8000, kFlagAa = 0x0400, kFlagTc = 0x0200, kFlagRd = 0x0100,
                        kFlagRa = 0x0080, kFlagCd = 0x0010;

inline std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t get32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}
inline void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void put32(std::uint8_t* p, std::uint32_t v) {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}
inline void append16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
inline void append32(std::string& out, std::uint32_t v) {
  append16(out, static_cast<std::uint16_t>(v >> 16));
  append16(out, static_cast<std::uint16_t>(v));
}

/// Reads an uncompressed name starting at `pos` (the question of a query never needs
/// compression). Appends its lower-cased wire form to `lower` and returns the offset after it,
/// or nullopt when the name is truncated, malformed or compressed.
std::optional<std::size_t> read_question_name(Bytes msg, std::size_t pos, std::string& lower);

/// Skips a possibly compressed name; returns the offset after it or nullopt.
std::optional<std::size_t> skip_name(Bytes msg, std::size_t pos);

/// Skips one resource record; returns the offset after it or nullopt when truncated.
std::optional<std::size_t> skip_record(Bytes msg, std::size_t pos);

/// Presentation ("Redis.Dev.svc.cluster.local.", trailing dot optional) to lower-cased wire
/// form. Returns nullopt for empty labels, labels over 63 bytes or names over 255 bytes.
std::optional<std::string> to_wire(std::string_view presentation);

/// Wire to presentation with a trailing dot; `wire` must be a well-formed uncompressed name.
std::string to_presentation(std::string_view wire);

/// Number of labels in an uncompressed wire name.
int label_count(std::string_view wire);

/// The wire name without its first `n` labels.
std::string_view strip_labels(std::string_view wire, int n);

/// True when `wire` equals `suffix` or ends with it on a label boundary.
bool is_subdomain(std::string_view wire, std::string_view suffix);

}  // namespace lpk::dns::detail
