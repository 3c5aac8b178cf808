// The first request of an h2c connection, found in what real clients send (curl and grpcio
// first flights captured by capture_h2_first_flight.py) and in hand-made frames: every split
// point, flags, CONTINUATION, and malformed frames and header blocks.
#include "agent/router/h2_sniff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "tests/agent/hex.hpp"

namespace lpk::router {
namespace {

using lpk::test::from_hex;
using Fields = std::vector<std::pair<std::string, std::string>>;

std::string fixture(const std::string& name) {
  return lpk::test::read_hex_file(std::string(LPK_AGENT_TEST_DATA) + "/" + name);
}

std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                  const std::string& payload) {
  std::string f;
  for (int shift : {16, 8, 0}) f.push_back(static_cast<char>(payload.size() >> shift));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift : {24, 16, 8, 0}) f.push_back(static_cast<char>(stream >> shift));
  return f + payload;
}

constexpr std::uint8_t kHeaders = 0x1, kSettings = 0x4, kPing = 0x6, kContinuation = 0x9;
constexpr std::uint8_t kEndStream = 0x1, kEndHeaders = 0x4, kPadded = 0x8, kPriority = 0x20;

const std::string kSettingsFrame = frame(kSettings, 0, 0, from_hex("0003 00000064"));
// RFC 7541 C.4.1: GET http://www.example.com/ (Huffman).
const std::string kBlock = from_hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff");
const Fields kBlockFields{
    {":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"}};

std::string flight(const std::string& frames) {
  return std::string(kH2Preface) + kSettingsFrame + frames;
}

SniffStatus sniff_status(const std::string& bytes) { return sniff_h2_first_request(bytes).status; }

bool has(const Fields& fields, const std::string& name, const std::string& value) {
  return std::find(fields.begin(), fields.end(), std::pair{name, value}) != fields.end();
}

TEST(H2Sniff, CurlFirstFlight) {
  const std::string bytes = fixture("h2_curl_first_flight.hex");
  ASSERT_GT(bytes.size(), kH2Preface.size()) << "tests/agent/data/h2_curl_first_flight.hex";
  auto r = sniff_h2_first_request(bytes);
  ASSERT_EQ(r.status, SniffStatus::found);
  EXPECT_TRUE(has(r.headers, "x-lpk-route", "a"));
  EXPECT_TRUE(has(r.headers, ":path", "/hello?name=lpk"));
  EXPECT_TRUE(has(r.headers, ":method", "GET"));
  EXPECT_TRUE(has(r.headers, ":scheme", "http"));
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers[0].first, ":method");
}

TEST(H2Sniff, GrpcFirstFlight) {
  const std::string bytes = fixture("h2_grpc_first_flight.hex");
  ASSERT_GT(bytes.size(), kH2Preface.size()) << "tests/agent/data/h2_grpc_first_flight.hex";
  auto r = sniff_h2_first_request(bytes);
  ASSERT_EQ(r.status, SniffStatus::found);
  EXPECT_TRUE(has(r.headers, "x-lpk-route", "a"));
  EXPECT_TRUE(has(r.headers, ":path", "/lpk.test.Echo/Say"));
  EXPECT_TRUE(has(r.headers, "content-type", "application/grpc"));
  EXPECT_TRUE(has(r.headers, ":method", "POST"));
}

TEST(H2Sniff, NeedMoreAtEverySplitPoint) {
  for (const char* name : {"h2_curl_first_flight.hex", "h2_grpc_first_flight.hex"}) {
    const std::string bytes = fixture(name);
    ASSERT_FALSE(bytes.empty()) << name;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_EQ(sniff_status(bytes.substr(0, n)), SniffStatus::need_more) << name << " " << n;
    }
    // What follows the headers (the request body, more requests) changes nothing.
    auto more =
        sniff_h2_first_request(bytes + frame(0x0, kEndStream, 1, "body") + std::string(2, '\0'));
    EXPECT_EQ(more.status, SniffStatus::found) << name;
    EXPECT_EQ(more.headers, sniff_h2_first_request(bytes).headers) << name;
  }
}

TEST(H2Sniff, NotH2) {
  EXPECT_EQ(sniff_status("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), SniffStatus::not_h2);
  EXPECT_EQ(sniff_status("G"), SniffStatus::not_h2);
  EXPECT_EQ(sniff_status("PRI * HTTP/1.1\r\n"), SniffStatus::not_h2);
  EXPECT_EQ(sniff_status(std::string("\x16\x03\x01\x02\x00", 5)), SniffStatus::not_h2);  // TLS
  EXPECT_EQ(sniff_status("PRI * HTTP/2"), SniffStatus::need_more);
}

TEST(H2Sniff, PaddingPriorityContinuationAndSkippedFrames) {
  const std::string ping = frame(kPing, 0, 0, std::string(8, 'p'));
  const std::string unknown = frame(0xfe, 0, 0, "whatever");
  const std::string window = frame(0x8, 0, 0, from_hex("00010000"));
  const std::string priority = frame(0x2, 0, 3, from_hex("0000000010"));
  // HEADERS padded (3 bytes) with a priority, the block split over two CONTINUATIONs.
  const std::string headers = frame(kHeaders, kPadded | kPriority | kEndStream, 1,
                                    "\x03" + from_hex("8000000010") + kBlock.substr(0, 3) + "pad");
  const std::string cont1 = frame(kContinuation, 0, 1, kBlock.substr(3, 5));
  const std::string cont2 = frame(kContinuation, kEndHeaders, 1, kBlock.substr(8));
  auto r =
      sniff_h2_first_request(flight(ping + unknown + window + priority + headers + cont1 + cont2));
  EXPECT_EQ(r.status, SniffStatus::found);
  EXPECT_EQ(r.headers, kBlockFields);
  // A HEADERS with everything in it, on a later stream.
  r = sniff_h2_first_request(flight(frame(kHeaders, kEndHeaders, 7, kBlock)));
  EXPECT_EQ(r.status, SniffStatus::found);
  EXPECT_EQ(r.headers, kBlockFields);
}

TEST(H2Sniff, MalformedFrames) {
  const std::string headers = frame(kHeaders, kEndHeaders, 1, kBlock);
  const std::string ping = frame(kPing, 0, 0, std::string(8, 'p'));
  // The preface not followed by SETTINGS.
  EXPECT_EQ(sniff_status(std::string(kH2Preface) + ping + headers), SniffStatus::malformed);
  // Bad lengths of SETTINGS, PING, WINDOW_UPDATE, PRIORITY.
  EXPECT_EQ(sniff_status(std::string(kH2Preface) + frame(kSettings, 0, 0, "12345") + headers),
            SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(kPing, 0, 0, "1234567") + headers)), SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(0x8, 0, 0, "123") + headers)), SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(0x2, 0, 1, "1234") + headers)), SniffStatus::malformed);
  // SETTINGS on a stream; DATA, RST_STREAM or CONTINUATION before any HEADERS.
  EXPECT_EQ(sniff_status(flight(frame(kSettings, 0, 1, "") + headers)), SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(0x0, 0, 1, "x") + headers)), SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(0x3, 0, 1, "1234") + headers)), SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(kContinuation, kEndHeaders, 1, kBlock))),
            SniffStatus::malformed);
  // HEADERS on stream 0 or on a server's (even) stream.
  EXPECT_EQ(sniff_status(flight(frame(kHeaders, kEndHeaders, 0, kBlock))), SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(kHeaders, kEndHeaders, 2, kBlock))), SniffStatus::malformed);
  // Padding longer than the payload; a PRIORITY flag without its 5 bytes; PADDED and empty.
  EXPECT_EQ(sniff_status(flight(frame(kHeaders, kEndHeaders | kPadded, 1, "\x20" + kBlock))),
            SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(kHeaders, kEndHeaders | kPriority, 1, "1234"))),
            SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(frame(kHeaders, kEndHeaders | kPadded, 1, ""))),
            SniffStatus::malformed);
}

TEST(H2Sniff, MalformedContinuation) {
  const std::string start = frame(kHeaders, 0, 1, kBlock.substr(0, 4));
  // On another stream.
  EXPECT_EQ(sniff_status(flight(start + frame(kContinuation, kEndHeaders, 3, kBlock.substr(4)))),
            SniffStatus::malformed);
  // Another frame type in the middle of the header block.
  EXPECT_EQ(sniff_status(flight(start + frame(kPing, 0, 0, std::string(8, 'p')))),
            SniffStatus::malformed);
  EXPECT_EQ(sniff_status(flight(start + frame(kHeaders, kEndHeaders, 3, kBlock))),
            SniffStatus::malformed);
  // Still waiting for the CONTINUATION.
  EXPECT_EQ(sniff_status(flight(start)), SniffStatus::need_more);
}

TEST(H2Sniff, MalformedHeaderBlocks) {
  auto with_block = [](const std::string& hex) {
    return sniff_status(flight(frame(kHeaders, kEndHeaders, 1, from_hex(hex))));
  };
  EXPECT_EQ(with_block("82 86 41 81 18 00"), SniffStatus::malformed);        // Huffman padding 000
  EXPECT_EQ(with_block("82 86 41 82 1f ff"), SniffStatus::malformed);        // padding over 7 bits
  EXPECT_EQ(with_block("82 86 be"), SniffStatus::malformed);                 // index out of range
  EXPECT_EQ(with_block("82 80"), SniffStatus::malformed);                    // index 0
  EXPECT_EQ(with_block("82 ff ff ff ff ff ff 0f"), SniffStatus::malformed);  // int overflow
  EXPECT_EQ(with_block("3f e2 1f 82"), SniffStatus::malformed);        // table size 4097 > 4096
  EXPECT_EQ(with_block("82 84 41 0f 77 77"), SniffStatus::malformed);  // truncated literal
  EXPECT_EQ(with_block("3f e1 1f 82"), SniffStatus::found);            // table size 4096: allowed
  auto r = sniff_h2_first_request(flight(frame(kHeaders, kEndHeaders, 1, from_hex("82 86 be"))));
  EXPECT_TRUE(r.headers.empty());
}

TEST(H2Sniff, SixtyFourKiBLimit) {
  // A frame whose end lies past 64 KiB is malformed as soon as its header is there.
  std::string big = frame(kHeaders, kEndHeaders, 1, std::string(kMaxH2SniffBytes, 'x'));
  EXPECT_EQ(sniff_status(flight(big.substr(0, 9))), SniffStatus::malformed);
  // PINGs up to the limit without a request: need_more until the limit, malformed past it.
  const std::string ping = frame(kPing, 0, 0, std::string(8, 'p'));
  std::string pings = flight("");
  while (pings.size() + ping.size() <= kMaxH2SniffBytes) pings += ping;
  EXPECT_EQ(sniff_status(pings), SniffStatus::need_more);
  EXPECT_EQ(sniff_status(pings + ping), SniffStatus::malformed);
  // A request whose headers end right at the limit is found.
  std::string filler = flight("");
  const std::string last = frame(kHeaders, kEndHeaders, 1, kBlock);
  while (filler.size() + ping.size() + 9 + last.size() <= kMaxH2SniffBytes) filler += ping;
  std::string unknown_len = std::string(kMaxH2SniffBytes - filler.size() - last.size() - 9, 'u');
  std::string exact = filler + frame(0xfe, 0, 0, unknown_len) + last;
  ASSERT_EQ(exact.size(), kMaxH2SniffBytes);
  EXPECT_EQ(sniff_status(exact), SniffStatus::found);
}

}  // namespace
}  // namespace lpk::router
