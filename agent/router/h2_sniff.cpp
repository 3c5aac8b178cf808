#include "agent/router/h2_sniff.hpp"

#include <algorithm>
#include <cstdint>

#include "agent/router/hpack.hpp"

namespace lpk::router {
namespace {

// RFC 9113 section 6: frame types and flags this needs.
enum FrameType : std::uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
constexpr std::uint8_t kEndHeaders = 0x4;
constexpr std::uint8_t kPadded = 0x8;
constexpr std::uint8_t kPriorityFlag = 0x20;
constexpr std::size_t kFrameHeader = 9;

struct Frame {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t stream = 0;
  std::string_view payload;
};

std::uint32_t read_be(std::string_view bytes, std::size_t pos, int n) {
  std::uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[pos + i]);
  return v;
}

// The frame at `pos`, or a status when it is not all there: need_more while it fits in the
// sniffing limit, malformed once it cannot.
SniffStatus next_frame(std::string_view bytes, std::size_t& pos, Frame& frame) {
  if (pos + kFrameHeader > kMaxH2SniffBytes) return SniffStatus::malformed;
  if (bytes.size() < pos + kFrameHeader) return SniffStatus::need_more;
  const std::size_t length = read_be(bytes, pos, 3);
  const std::size_t end = pos + kFrameHeader + length;
  if (end > kMaxH2SniffBytes) return SniffStatus::malformed;
  if (bytes.size() < end) return SniffStatus::need_more;
  frame.type = static_cast<std::uint8_t>(bytes[pos + 3]);
  frame.flags = static_cast<std::uint8_t>(bytes[pos + 4]);
  frame.stream = read_be(bytes, pos + 5, 4) & 0x7fffffffu;
  frame.payload = bytes.substr(pos + kFrameHeader, length);
  pos = end;
  return SniffStatus::found;
}

// A frame allowed before the first request, checked as RFC 9113 section 6 says.
bool valid_control_frame(const Frame& f) {
  const std::size_t n = f.payload.size();
  switch (f.type) {
    case kSettings:
      return f.stream == 0 && n % 6 == 0 && ((f.flags & 0x1) == 0 || n == 0);
    case kPing:
      return f.stream == 0 && n == 8;
    case kWindowUpdate:
      return n == 4 && (read_be(f.payload, 0, 4) & 0x7fffffffu) != 0;
    case kPriority:
      return f.stream != 0 && n == 5;
    case kData:
    case kRstStream:     // on an idle stream: a protocol error
    case kPushPromise:   // only servers push
    case kContinuation:  // without a HEADERS before it
      return false;
    default:  // GOAWAY and unknown types carry nothing for us (6.8, 5.5)
      return true;
  }
}

// The header block fragment of a HEADERS frame: its padding and priority fields removed.
bool headers_fragment(const Frame& f, std::string_view& fragment) {
  if (f.stream == 0 || f.stream % 2 == 0) return false;  // client streams are odd
  std::string_view p = f.payload;
  std::size_t padding = 0;
  if (f.flags & kPadded) {
    if (p.empty()) return false;
    padding = static_cast<unsigned char>(p[0]);
    p.remove_prefix(1);
  }
  if (f.flags & kPriorityFlag) {
    if (p.size() < 5) return false;
    p.remove_prefix(5);
  }
  if (padding > p.size()) return false;
  fragment = p.substr(0, p.size() - padding);
  return true;
}

H2FirstRequest decode_first_request(std::string_view block) {
  H2FirstRequest result;
  HpackDecoder decoder;
  result.status = decoder.decode(block, result.headers) == HpackError::none
                      ? SniffStatus::found
                      : SniffStatus::malformed;
  if (result.status != SniffStatus::found) result.headers.clear();
  return result;
}

H2FirstRequest only_status(SniffStatus s) { return H2FirstRequest{s, {}}; }

}  // namespace

H2FirstRequest sniff_h2_first_request(std::string_view bytes) {
  const std::size_t n = std::min(bytes.size(), kH2Preface.size());
  if (bytes.substr(0, n) != kH2Preface.substr(0, n)) return only_status(SniffStatus::not_h2);
  std::size_t pos = kH2Preface.size();
  std::string block;
  std::uint32_t header_stream = 0;  // the stream of the HEADERS being continued, or 0
  for (bool first = true;; first = false) {
    Frame f;
    if (auto s = next_frame(bytes, pos, f); s != SniffStatus::found) return only_status(s);
    // 3.4: the preface is followed by a SETTINGS frame.
    if (first && f.type != kSettings) return only_status(SniffStatus::malformed);
    std::string_view fragment = f.payload;
    if (header_stream != 0) {
      if (f.type != kContinuation || f.stream != header_stream) {
        return only_status(SniffStatus::malformed);
      }
    } else if (f.type == kHeaders) {
      if (!headers_fragment(f, fragment)) return only_status(SniffStatus::malformed);
      header_stream = f.stream;
    } else {
      if (!valid_control_frame(f)) return only_status(SniffStatus::malformed);
      continue;
    }
    block.append(fragment);
    if (f.flags & kEndHeaders) return decode_first_request(block);
  }
}

}  // namespace lpk::router
