// What real HTTP/2 clients send first (curl and grpcio first flights, captured by
// capture_h2_first_flight.py), read as the router reads a client connection: the frames after
// the preface with the frame reader, the first request's header block (HEADERS and its
// CONTINUATIONs) with the HPACK decoder. Each frame split anywhere: h2_frame_test; malformed
// blocks: hpack_test.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/router/h2_frame.hpp"
#include "agent/router/hpack.hpp"
#include "tests/agent/hex.hpp"

namespace lpk::router {
namespace {

using Fields = std::vector<HeaderField>;

std::string fixture(const std::string& name) {
  return lpk::test::read_hex_file(std::string(LPK_AGENT_TEST_DATA) + "/" + name);
}

/// The first request's header fields; a test failure when the bytes do not hold one whole.
Fields first_request(const std::string& bytes) {
  EXPECT_EQ(bytes.substr(0, kH2Preface.size()), kH2Preface);
  std::string_view rest(bytes);
  rest.remove_prefix(std::min(rest.size(), kH2Preface.size()));
  HpackDecoder decoder;
  std::string block;
  for (;;) {
    h2::Frame f;
    std::size_t used = 0;
    if (h2::read_frame(rest, h2::kDefaultMaxFrame, f, used) != h2::ReadStatus::frame) {
      ADD_FAILURE() << "the bytes end before the first request's headers do";
      return {};
    }
    EXPECT_EQ(h2::check_frame(f), h2::Error::no_error) << "frame type " << int(f.type);
    if (f.type == h2::kHeaders || f.type == h2::kContinuation) {
      block += h2::frame_content(f);
      if (f.flags & h2::kEndHeaders) {
        Fields fields;
        EXPECT_EQ(decoder.decode(block, fields), HpackError::none);
        return fields;
      }
    }
    rest.remove_prefix(used);
  }
}

bool has(const Fields& fields, const std::string& name, const std::string& value) {
  return std::find(fields.begin(), fields.end(), std::pair{name, value}) != fields.end();
}

TEST(H2FirstFlight, Curl) {
  const std::string bytes = fixture("h2_curl_first_flight.hex");
  ASSERT_GT(bytes.size(), kH2Preface.size()) << "tests/agent/data/h2_curl_first_flight.hex";
  auto fields = first_request(bytes);
  EXPECT_TRUE(has(fields, "x-lpk-route", "a"));
  EXPECT_TRUE(has(fields, ":path", "/hello?name=lpk"));
  EXPECT_TRUE(has(fields, ":method", "GET"));
  EXPECT_TRUE(has(fields, ":scheme", "http"));
  ASSERT_FALSE(fields.empty());
  EXPECT_EQ(fields[0].first, ":method");
}

TEST(H2FirstFlight, Grpc) {
  const std::string bytes = fixture("h2_grpc_first_flight.hex");
  ASSERT_GT(bytes.size(), kH2Preface.size()) << "tests/agent/data/h2_grpc_first_flight.hex";
  auto fields = first_request(bytes);
  EXPECT_TRUE(has(fields, "x-lpk-route", "a"));
  EXPECT_TRUE(has(fields, ":path", "/lpk.test.Echo/Say"));
  EXPECT_TRUE(has(fields, "content-type", "application/grpc"));
  EXPECT_TRUE(has(fields, ":method", "POST"));
}

TEST(H2FirstFlight, ReencodedForABackendTheFieldsStayTheSame) {
  for (const char* name : {"h2_curl_first_flight.hex", "h2_grpc_first_flight.hex"}) {
    auto fields = first_request(fixture(name));
    ASSERT_FALSE(fields.empty()) << name;
    std::string block;
    HpackEncoder::encode(fields, block);
    HpackDecoder backend;
    Fields back;
    ASSERT_EQ(backend.decode(block, back), HpackError::none) << name;
    EXPECT_EQ(back, fields) << name;
  }
}

}  // namespace
}  // namespace lpk::router
