#pragma once
// How a UDP flow's datagrams ride a tunnel stream (docs/protocol.md §8): each datagram is one
// record, a 2-byte big-endian length and the datagram's bytes, so message boundaries survive
// the byte stream. Pure: bytes in, records out; no I/O, no allocation.

#include <array>
#include <cstddef>
#include <span>

namespace lpk::tunnel {

/// The largest UDP payload over IPv4 (65535 - 8 - 20); a longer record is malformed.
inline constexpr std::size_t kMaxDatagramSize = 65507;
inline constexpr std::size_t kRecordHeaderSize = 2;

/// The record header for a datagram of `size` bytes (size <= kMaxDatagramSize).
std::array<std::byte, kRecordHeaderSize> encode_record_header(std::size_t size);

/// One step of splitting a byte sequence into records.
struct RecordStep {
  enum class Status { need_more, record, malformed };
  Status status = Status::need_more;
  std::size_t consumed = 0;               // bytes of `in` this record occupied
  std::span<const std::byte> datagram;    // a view into `in`
};

/// Decodes the record at the start of `in`. `malformed` (a length above kMaxDatagramSize)
/// means the stream can no longer be trusted: its flow must end.
RecordStep decode_record(std::span<const std::byte> in);

}  // namespace lpk::tunnel
