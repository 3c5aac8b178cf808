// HTTP/2 frames (agent/router/h2_frame): the reader given a connection's bytes cut at every
// point, the checks of each frame type, SETTINGS, and the writers read back by the reader.
#include "agent/router/h2_frame.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/agent/hex.hpp"

namespace lpk::router::h2 {
namespace {

using lpk::test::from_hex;

struct Seen {
  std::uint8_t type;
  std::uint8_t flags;
  std::uint32_t stream;
  std::string content;
  friend bool operator==(const Seen&, const Seen&) = default;
};

/// Reads `bytes` as they arrive in two pieces cut at `split`, as a connection's reader does:
/// what is not a whole frame waits for more.
std::vector<Seen> read_all(const std::string& bytes, std::size_t split, bool& too_large) {
  std::vector<Seen> seen;
  std::string buffer;
  too_large = false;
  for (auto piece : {bytes.substr(0, split), bytes.substr(split)}) {
    buffer += piece;
    for (;;) {
      Frame f;
      std::size_t used = 0;
      auto status = read_frame(buffer, kDefaultMaxFrame, f, used);
      if (status == ReadStatus::too_large) {
        too_large = true;
        return seen;
      }
      if (status == ReadStatus::need_more) break;
      EXPECT_EQ(check_frame(f), Error::no_error) << int(f.type);
      seen.push_back({f.type, f.flags, f.stream, std::string(frame_content(f))});
      buffer.erase(0, used);
    }
  }
  EXPECT_TRUE(buffer.empty());
  return seen;
}

std::string a_flight() {
  std::string out;
  append_settings(out, {{kSettingsEnablePush, 0}, {kSettingsInitialWindowSize, 1 << 20}});
  append_window_update(out, 0, 983041);
  append_headers(out, 1, std::string(40000, 'h'), false, kDefaultMaxFrame);  // 3 frames
  append_frame(out, kData, kEndStream, 1, "body");
  append_rst_stream(out, 3, Error::cancel);
  append_goaway(out, 7, Error::protocol);
  append_frame(out, 0xfa, 0, 0, "an unknown type");
  return out;
}

TEST(H2Frame, ReadsTheSameFramesAtEverySplitPoint) {
  const std::string bytes = a_flight();
  bool too_large = false;
  const auto whole = read_all(bytes, bytes.size(), too_large);
  ASSERT_EQ(whole.size(), 9u);
  EXPECT_EQ(whole[0].type, kSettings);
  EXPECT_EQ(whole[1], (Seen{kWindowUpdate, 0, 0, from_hex("000f0001")}));
  EXPECT_EQ(whole[2].type, kHeaders);
  EXPECT_EQ(whole[2].flags, 0);  // END_HEADERS only on the last CONTINUATION
  EXPECT_EQ(whole[2].content.size(), kDefaultMaxFrame);
  EXPECT_EQ(whole[3].type, kContinuation);
  EXPECT_EQ(whole[4], (Seen{kContinuation, kEndHeaders, 1, std::string(40000 - 32768, 'h')}));
  EXPECT_EQ(whole[5], (Seen{kData, kEndStream, 1, "body"}));
  EXPECT_EQ(whole[6], (Seen{kRstStream, 0, 3, from_hex("00000008")}));
  EXPECT_EQ(whole[7], (Seen{kGoaway, 0, 0, from_hex("00000007 00000001")}));
  EXPECT_EQ(whole[8].type, 0xfa);
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    ASSERT_EQ(read_all(bytes, split, too_large), whole) << "split at " << split;
    ASSERT_FALSE(too_large);
  }
}

TEST(H2Frame, PaddingAndPriorityAreTakenOff) {
  // HEADERS, PADDED | PRIORITY | END_HEADERS: pad length 3, priority 5 bytes, "abc", padding.
  auto bytes = from_hex("00000c 01 2c 00000001 03 00000000 10 616263 000000");
  bool too_large = false;
  auto seen = read_all(bytes, 0, too_large);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].content, "abc");
  // DATA, PADDED: pad length 2, "xy", padding; the reserved bit of the stream is ignored.
  seen = read_all(from_hex("000005 00 08 80000003 02 7879 0000"), 3, too_large);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (Seen{kData, kPadded, 3, "xy"}));
}

TEST(H2Frame, AFrameOverTheLimitIsTooLarge) {
  std::string bytes = from_hex("004001 00 00 00000001");  // 16385 bytes of DATA
  Frame f;
  std::size_t used = 0;
  EXPECT_EQ(read_frame(bytes, kDefaultMaxFrame, f, used), ReadStatus::too_large);
  EXPECT_EQ(read_frame(bytes.substr(0, 8), kDefaultMaxFrame, f, used), ReadStatus::need_more);
  bytes.append(16385, 'x');
  EXPECT_EQ(read_frame(bytes, 16385, f, used), ReadStatus::frame);
  EXPECT_EQ(used, 16394u);
}

Error check(std::string_view hex) {
  auto bytes = from_hex(hex);
  Frame f;
  std::size_t used = 0;
  EXPECT_EQ(read_frame(bytes, kDefaultMaxFrame, f, used), ReadStatus::frame) << hex;
  return check_frame(f);
}

TEST(H2Frame, MalformedFramesOfEachType) {
  EXPECT_EQ(check("000000 00 00 00000000"), Error::protocol);             // DATA on stream 0
  EXPECT_EQ(check("000001 00 08 00000001 01"), Error::protocol);          // padding = length
  EXPECT_EQ(check("000000 00 08 00000001"), Error::frame_size);           // no pad length
  EXPECT_EQ(check("000004 01 20 00000001 00000000"), Error::frame_size);  // short priority
  EXPECT_EQ(check("000004 02 00 00000001 00000000"), Error::frame_size);  // PRIORITY of 4
  EXPECT_EQ(check("000005 02 00 00000000 0000000010"), Error::protocol);  // ... on stream 0
  EXPECT_EQ(check("000004 03 00 00000000 00000008"), Error::protocol);    // RST_STREAM on 0
  EXPECT_EQ(check("000003 03 00 00000001 000008"), Error::frame_size);
  EXPECT_EQ(check("000005 04 00 00000000 0000000000"), Error::frame_size);      // SETTINGS of 5
  EXPECT_EQ(check("000006 04 01 00000000 000200000000"), Error::frame_size);    // ACK with data
  EXPECT_EQ(check("000000 04 00 00000001"), Error::protocol);                   // on a stream
  EXPECT_EQ(check("000004 05 04 00000001 00000002"), Error::protocol);          // PUSH_PROMISE
  EXPECT_EQ(check("000007 06 00 00000000 00000000000000"), Error::frame_size);  // PING of 7
  EXPECT_EQ(check("000008 06 00 00000001 0000000000000000"), Error::protocol);
  EXPECT_EQ(check("000007 07 00 00000000 00000000000000"), Error::frame_size);  // GOAWAY
  EXPECT_EQ(check("000004 08 00 00000001 80000000"), Error::protocol);          // increment 0
  EXPECT_EQ(check("000003 08 00 00000000 000001"), Error::frame_size);
  EXPECT_EQ(check("000000 09 04 00000000"), Error::protocol);     // CONTINUATION on 0
  EXPECT_EQ(check("000001 ee 00 00000000 00"), Error::no_error);  // unknown: ignored
  EXPECT_EQ(check("000008 06 01 00000000 0102030405060708"), Error::no_error);
}

TEST(H2Frame, SettingsApplyAndOutOfRangeValuesAreErrors) {
  Settings s;
  auto apply = [&s](std::string_view hex) { return apply_settings(from_hex(hex), s); };
  EXPECT_EQ(apply("0003 00000064 0004 00100000 0005 00004000 0099 00000001"), Error::no_error);
  EXPECT_EQ(s.max_concurrent_streams, 100u);
  EXPECT_EQ(s.initial_window_size, 1u << 20);
  EXPECT_EQ(s.max_frame_size, 16384u);
  EXPECT_EQ(apply("0002 00000002"), Error::protocol);      // ENABLE_PUSH 2
  EXPECT_EQ(apply("0004 80000000"), Error::flow_control);  // window over 2^31-1
  EXPECT_EQ(apply("0005 00003fff"), Error::protocol);      // frame size under 16384
  EXPECT_EQ(apply("0005 01000000"), Error::protocol);      // ... over 2^24-1
  EXPECT_EQ(apply("0001 00000000 0006 00001000"), Error::no_error);
  EXPECT_EQ(s.header_table_size, 0u);
  EXPECT_EQ(s.max_header_list_size, 4096u);
}

TEST(H2Frame, HeadersSplitAtThePeersFrameSize) {
  for (std::size_t size : {0u, 1u, 99u, 100u, 101u, 1000u}) {
    std::string out;
    append_headers(out, 5, std::string(size, 'b'), true, 100);
    bool too_large = false;
    auto seen = read_all(out, out.size() / 2, too_large);
    const std::size_t frames = size == 0 ? 1 : (size + 99) / 100;
    ASSERT_EQ(seen.size(), frames) << size;
    std::string block;
    for (std::size_t i = 0; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i].type, i == 0 ? kHeaders : kContinuation);
      EXPECT_EQ(seen[i].stream, 5u);
      const std::uint8_t end_stream = i == 0 ? kEndStream : 0;
      const std::uint8_t end_headers = i + 1 == seen.size() ? kEndHeaders : 0;
      EXPECT_EQ(seen[i].flags, end_stream | end_headers) << size << " frame " << i;
      EXPECT_LE(seen[i].content.size(), 100u);
      block += seen[i].content;
    }
    EXPECT_EQ(block, std::string(size, 'b'));
  }
}

}  // namespace
}  // namespace lpk::router::h2
