#include "agent/router/h2_frame.hpp"

namespace lpk::router::h2 {
namespace {

void append_be(std::string& out, std::uint32_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The padding length and priority fields a DATA or HEADERS frame starts with.
std::size_t prefix_size(const Frame& f) {
  std::size_t n = (f.flags & kPadded) ? 1 : 0;
  if (f.type == kHeaders && (f.flags & kPriorityFlag)) n += 5;
  return n;
}

Error check_padded(const Frame& f) {
  if (f.stream == 0) return Error::protocol;
  const std::size_t prefix = prefix_size(f);
  if (f.payload.size() < prefix) return Error::frame_size;
  if (f.flags & kPadded) {
    // 6.1: padding as long as the payload or longer is a protocol error.
    if (static_cast<unsigned char>(f.payload[0]) > f.payload.size() - prefix) {
      return Error::protocol;
    }
  }
  return Error::no_error;
}

}  // namespace

std::uint32_t read_be(std::string_view bytes, std::size_t pos, int n) {
  std::uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[pos + i]);
  return v;
}

ReadStatus read_frame(std::string_view bytes, std::uint32_t max_size, Frame& frame,
                      std::size_t& used) {
  if (bytes.size() < kFrameHeaderSize) return ReadStatus::need_more;
  const std::uint32_t length = read_be(bytes, 0, 3);
  if (length > max_size) return ReadStatus::too_large;
  if (bytes.size() - kFrameHeaderSize < length) return ReadStatus::need_more;
  frame.length = length;
  frame.type = static_cast<std::uint8_t>(bytes[3]);
  frame.flags = static_cast<std::uint8_t>(bytes[4]);
  frame.stream = read_be(bytes, 5, 4) & 0x7fffffffu;
  frame.payload = bytes.substr(kFrameHeaderSize, length);
  used = kFrameHeaderSize + length;
  return ReadStatus::frame;
}

Error check_frame(const Frame& f) {
  const std::size_t n = f.payload.size();
  switch (f.type) {
    case kData:
    case kHeaders:
      return check_padded(f);
    case kPriority:
      return f.stream == 0 ? Error::protocol : n != 5 ? Error::frame_size : Error::no_error;
    case kRstStream:
      return f.stream == 0 ? Error::protocol : n != 4 ? Error::frame_size : Error::no_error;
    case kSettings:
      if (f.stream != 0) return Error::protocol;
      return (n % 6 != 0 || ((f.flags & kAck) && n != 0)) ? Error::frame_size : Error::no_error;
    case kPushPromise:  // the router disables push, and clients never push
      return Error::protocol;
    case kPing:
      return f.stream != 0 ? Error::protocol : n != 8 ? Error::frame_size : Error::no_error;
    case kGoaway:
      return f.stream != 0 ? Error::protocol : n < 8 ? Error::frame_size : Error::no_error;
    case kWindowUpdate:
      if (n != 4) return Error::frame_size;
      return (read_be(f.payload, 0, 4) & 0x7fffffffu) == 0 ? Error::protocol : Error::no_error;
    case kContinuation:
      return f.stream == 0 ? Error::protocol : Error::no_error;
    default:  // 5.5: unknown types are ignored
      return Error::no_error;
  }
}

std::string_view frame_content(const Frame& f) {
  if (f.type != kData && f.type != kHeaders) return f.payload;
  std::string_view p = f.payload;
  std::size_t padding = (f.flags & kPadded) ? static_cast<unsigned char>(p[0]) : 0;
  p.remove_prefix(prefix_size(f));
  return p.substr(0, p.size() - padding);
}

Error apply_settings(std::string_view payload, Settings& s) {
  for (std::size_t pos = 0; pos + 6 <= payload.size(); pos += 6) {
    const auto id = static_cast<std::uint16_t>(read_be(payload, pos, 2));
    const std::uint32_t v = read_be(payload, pos + 2, 4);
    switch (id) {
      case kSettingsHeaderTableSize:
        s.header_table_size = v;
        break;
      case kSettingsEnablePush:
        if (v > 1) return Error::protocol;
        s.enable_push = v;
        break;
      case kSettingsMaxConcurrentStreams:
        s.max_concurrent_streams = v;
        break;
      case kSettingsInitialWindowSize:
        if (v > kMaxWindow) return Error::flow_control;
        s.initial_window_size = v;
        break;
      case kSettingsMaxFrameSize:
        if (v < kDefaultMaxFrame || v > 0xffffff) return Error::protocol;
        s.max_frame_size = v;
        break;
      case kSettingsMaxHeaderListSize:
        s.max_header_list_size = v;
        break;
      default:
        break;
    }
  }
  return Error::no_error;
}

void append_frame(std::string& out, std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                  std::string_view payload) {
  append_be(out, static_cast<std::uint32_t>(payload.size()), 3);
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  append_be(out, stream & 0x7fffffffu, 4);
  out.append(payload);
}

void append_settings(std::string& out, std::initializer_list<Setting> settings) {
  std::string payload;
  for (const auto& s : settings) {
    append_be(payload, s.id, 2);
    append_be(payload, s.value, 4);
  }
  append_frame(out, kSettings, 0, 0, payload);
}

void append_window_update(std::string& out, std::uint32_t stream, std::uint32_t increment) {
  std::string payload;
  append_be(payload, increment & 0x7fffffffu, 4);
  append_frame(out, kWindowUpdate, 0, stream, payload);
}

void append_rst_stream(std::string& out, std::uint32_t stream, Error code) {
  std::string payload;
  append_be(payload, static_cast<std::uint32_t>(code), 4);
  append_frame(out, kRstStream, 0, stream, payload);
}

void append_goaway(std::string& out, std::uint32_t last_stream, Error code) {
  std::string payload;
  append_be(payload, last_stream & 0x7fffffffu, 4);
  append_be(payload, static_cast<std::uint32_t>(code), 4);
  append_frame(out, kGoaway, 0, 0, payload);
}

void append_headers(std::string& out, std::uint32_t stream, std::string_view block, bool end_stream,
                    std::uint32_t max_frame) {
  std::uint8_t type = kHeaders;
  std::uint8_t flags = end_stream ? kEndStream : 0;
  do {
    auto piece = block.substr(0, max_frame);
    block.remove_prefix(piece.size());
    append_frame(out, type, flags | (block.empty() ? kEndHeaders : 0), stream, piece);
    type = kContinuation;
    flags = 0;
  } while (!block.empty());
}

}  // namespace lpk::router::h2
