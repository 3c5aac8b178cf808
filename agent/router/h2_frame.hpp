#pragma once
// HTTP/2 frames (RFC 9113 section 4 and 6): the reader of one frame from a connection's bytes,
// the checks each frame type needs before its payload is used, SETTINGS, and the writers of
// the frames the router sends. Pure: no I/O, never throws on peer bytes, no state.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace lpk::router {
/// The client connection preface (RFC 9113 section 3.4): what every HTTP/2 connection with prior
/// knowledge starts with.
inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
}  // namespace lpk::router

namespace lpk::router::h2 {

enum FrameType : std::uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
inline constexpr std::uint8_t kEndStream = 0x1;
inline constexpr std::uint8_t kAck = 0x1;
inline constexpr std::uint8_t kEndHeaders = 0x4;
inline constexpr std::uint8_t kPadded = 0x8;
inline constexpr std::uint8_t kPriorityFlag = 0x20;

inline constexpr std::size_t kFrameHeaderSize = 9;
/// The frame size limit every endpoint starts with, and the one the router advertises.
inline constexpr std::uint32_t kDefaultMaxFrame = 16384;
inline constexpr std::int64_t kMaxWindow = 0x7fffffff;

/// RFC 9113 section 7.
enum class Error : std::uint32_t {
  no_error = 0x0,
  protocol = 0x1,
  internal = 0x2,
  flow_control = 0x3,
  stream_closed = 0x5,
  frame_size = 0x6,
  refused_stream = 0x7,
  cancel = 0x8,
  compression = 0x9,
  enhance_your_calm = 0xb,
};

struct Frame {
  std::uint32_t length = 0;  ///< of the payload
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t stream = 0;  ///< the reserved bit cleared
  std::string_view payload;
};

enum class ReadStatus { need_more, frame, too_large };

/// The frame at the front of `bytes` (need_more until its header and payload are all there);
/// `used` is its size on the wire. too_large: its length is over `max_size` (FRAME_SIZE_ERROR).
ReadStatus read_frame(std::string_view bytes, std::uint32_t max_size, Frame& frame,
                      std::size_t& used);

/// Section 6's checks of a known frame type (stream 0 or not, payload sizes, padding, a
/// WINDOW_UPDATE of 0): Error::no_error when the frame may be used. Unknown types pass.
Error check_frame(const Frame& frame);

/// What a checked DATA or HEADERS frame carries: its payload without padding and priority
/// fields (the data, or the header block fragment). Other types: the payload.
std::string_view frame_content(const Frame& frame);

/// A big-endian integer of `n` (1..4) bytes at `pos`; the caller checked the size.
std::uint32_t read_be(std::string_view bytes, std::size_t pos, int n);

/// Section 6.5.2: an endpoint's settings, the defaults until its SETTINGS say otherwise.
struct Settings {
  std::uint32_t header_table_size = 4096;
  std::uint32_t enable_push = 1;
  std::uint32_t max_concurrent_streams = 0xffffffff;
  std::uint32_t initial_window_size = 65535;
  std::uint32_t max_frame_size = kDefaultMaxFrame;
  std::uint32_t max_header_list_size = 0xffffffff;
};
inline constexpr std::uint16_t kSettingsHeaderTableSize = 0x1;
inline constexpr std::uint16_t kSettingsEnablePush = 0x2;
inline constexpr std::uint16_t kSettingsMaxConcurrentStreams = 0x3;
inline constexpr std::uint16_t kSettingsInitialWindowSize = 0x4;
inline constexpr std::uint16_t kSettingsMaxFrameSize = 0x5;
inline constexpr std::uint16_t kSettingsMaxHeaderListSize = 0x6;

/// Applies a (checked, not ACK) SETTINGS payload to `settings`; unknown settings are ignored.
/// protocol / flow_control for values out of range (settings then partly applied: the
/// connection is to be closed).
Error apply_settings(std::string_view payload, Settings& settings);

/// Writers: each appends one frame (or a HEADERS and its CONTINUATIONs) to `out`.
void append_frame(std::string& out, std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                  std::string_view payload);
struct Setting {
  std::uint16_t id;
  std::uint32_t value;
};
void append_settings(std::string& out, std::initializer_list<Setting> settings);
void append_window_update(std::string& out, std::uint32_t stream, std::uint32_t increment);
void append_rst_stream(std::string& out, std::uint32_t stream, Error code);
void append_goaway(std::string& out, std::uint32_t last_stream, Error code);
/// A header block as a HEADERS frame, then CONTINUATION frames, none over `max_frame`.
void append_headers(std::string& out, std::uint32_t stream, std::string_view block, bool end_stream,
                    std::uint32_t max_frame);

}  // namespace lpk::router::h2
