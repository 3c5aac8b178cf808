#pragma once
// Pure encoder and decoder for the tunnel wire format: bytes in, frames out. No I/O, no
// logging, no allocation except for the strings of control frames (reasons, host names).

#include <array>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <cstddef>
#include <span>
#include <string_view>

#include "proxy/tunnel/protocol.hpp"

namespace lpk::tunnel {

/// Largest control frame (GOAWAY with the longest reason), header included.
inline constexpr std::size_t kMaxControlFrameSize = kFrameHeaderSize + 10 + kMaxReasonSize;

/// One encoded control frame in a fixed buffer, so queueing it never allocates.
struct EncodedFrame {
  std::array<std::byte, kMaxControlFrameSize> bytes;
  std::size_t size = 0;
  std::span<const std::byte> view() const { return {bytes.data(), size}; }
};

std::array<std::byte, kHelloSize> encode_hello(const Hello& hello);
/// Decodes a hello from exactly kHelloSize bytes; checks magic, version, role and ranges.
boost::system::result<Hello> decode_hello(std::span<const std::byte, kHelloSize> in);

void encode_header(const FrameHeader& header, std::span<std::byte, kFrameHeaderSize> out);
/// Header of a DATA frame whose payload follows in a separate buffer.
std::array<std::byte, kFrameHeaderSize> encode_data_header(std::uint32_t stream_id,
                                                           std::uint32_t length, bool fin);

/// Fails (bad_frame) only for a target that cannot be expressed: a name too long or empty,
/// an unparsable address.
boost::system::result<EncodedFrame> encode_open(std::uint32_t stream_id, const Target& target);
EncodedFrame encode_open_result(std::uint32_t stream_id, OpenCode code, std::string_view reason);
EncodedFrame encode_window(std::uint32_t stream_id, const WindowFrame& window);
/// WINDOW with the FIN flag (resumable sessions): every byte and the FIN reached the application.
EncodedFrame encode_window_fin_delivered(std::uint32_t stream_id, const WindowFrame& window);
/// One entry of the list after a resumed hello; on stream 0 the end of the list.
EncodedFrame encode_resume(std::uint32_t stream_id, const ResumeFrame& resume);
EncodedFrame encode_reset(std::uint32_t stream_id, ResetCode code, std::string_view reason);
EncodedFrame encode_ping(std::uint64_t opaque, bool ack);
EncodedFrame encode_go_away(std::uint32_t last_stream_id, GoAwayCode code,
                            std::string_view reason);

/// One step of decoding a byte sequence that holds zero or more frames.
struct DecodeStep {
  enum class Status { need_more, frame, error };
  Status status = Status::need_more;
  std::size_t consumed = 0;            // bytes of `in` this frame occupied
  FrameHeader header;
  std::span<const std::byte> payload;  // DATA payload, a view into `in`
  ControlBody body;                    // decoded control frame (monostate for DATA)
  boost::system::error_code error;     // when status == error: the session must end
};

/// Decodes the frame at the start of `in`. `max_payload` is the limit this side announced.
/// Any error is fatal to the session: after it, frame boundaries can no longer be trusted.
DecodeStep decode_frame(std::span<const std::byte> in, std::uint32_t max_payload);

}  // namespace lpk::tunnel
