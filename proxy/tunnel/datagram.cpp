#include "proxy/tunnel/datagram.hpp"

#include <cstdint>

namespace lpk::tunnel {

std::array<std::byte, kRecordHeaderSize> encode_record_header(std::size_t size) {
  return {std::byte(std::uint8_t(size >> 8)), std::byte(std::uint8_t(size))};
}

RecordStep decode_record(std::span<const std::byte> in) {
  if (in.size() < kRecordHeaderSize) return {};
  const std::size_t size = std::size_t(std::uint8_t(in[0])) << 8 | std::uint8_t(in[1]);
  if (size > kMaxDatagramSize) return {RecordStep::Status::malformed, 0, {}};
  if (in.size() < kRecordHeaderSize + size) return {};
  return {RecordStep::Status::record, kRecordHeaderSize + size,
          in.subspan(kRecordHeaderSize, size)};
}

}  // namespace lpk::tunnel
