// libFuzzer target for the router's HTTP/2 frame reader (agent/router/h2_frame) and its HPACK
// encoder: no input may crash; the reader must consume exactly what it reports within the
// bytes, never a frame over the limit; a checked frame's content lies within its payload; and
// whatever a decoder takes from a header block, the encoder's block of it decodes to the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/router/h2_frame.hpp"
#include "agent/router/hpack.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lpk::router;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  HpackDecoder decoder;
  for (;;) {
    h2::Frame f;
    std::size_t used = 0;
    auto status = h2::read_frame(bytes, h2::kDefaultMaxFrame, f, used);
    if (status != h2::ReadStatus::frame) break;
    if (used > bytes.size() || f.length > h2::kDefaultMaxFrame) __builtin_trap();
    if (f.payload.size() != f.length || used != h2::kFrameHeaderSize + f.length) __builtin_trap();
    if (h2::check_frame(f) == h2::Error::no_error) {
      auto content = h2::frame_content(f);
      if (content.data() < f.payload.data() ||
          content.data() + content.size() > f.payload.data() + f.payload.size()) {
        __builtin_trap();
      }
      if (f.type == h2::kSettings && !(f.flags & h2::kAck)) {
        h2::Settings settings;
        h2::apply_settings(f.payload, settings);
      }
      if (f.type == h2::kHeaders || f.type == h2::kContinuation) {
        std::vector<HeaderField> fields;
        if (decoder.decode(content, fields) == HpackError::none) {
          std::string block;
          HpackEncoder::encode(fields, block);
          HpackDecoder fresh;
          std::vector<HeaderField> back;
          if (fresh.decode(block, back) != HpackError::none || back != fields) __builtin_trap();
        }
      }
    }
    bytes.remove_prefix(used);
  }
  return 0;
}
