#include "proxy/tunnel/codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/tunnel/error.hpp"
#include "tests/proxy/tunnel/test_util.hpp"

namespace lpk::tunnel {
namespace {

using test::to_bytes;
using Status = DecodeStep::Status;

constexpr std::uint32_t kMax = 64 * 1024;

using test::bytes_of;

// A frame built by hand, for inputs the encoder refuses to produce.
std::vector<std::byte> raw_frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                                 const std::vector<std::byte>& payload,
                                 std::optional<std::uint32_t> length = std::nullopt) {
  const std::uint32_t len = length.value_or(std::uint32_t(payload.size()));
  std::vector<std::byte> out = {
      std::byte(len >> 24),    std::byte(len >> 16),    std::byte(len >> 8),
      std::byte(len),          std::byte(type),         std::byte(flags),
      std::byte{0},            std::byte{0},            std::byte(stream >> 24),
      std::byte(stream >> 16), std::byte(stream >> 8),  std::byte(stream)};
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<std::byte> be(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(std::byte(v));
  return out;
}

// OPEN payload: kind, reserved, port, host length, host.
std::vector<std::byte> open_payload(int kind, std::uint16_t port, const std::vector<std::byte>& host,
                                    std::optional<int> host_len = std::nullopt) {
  auto out = be({kind, 0, port >> 8, port & 0xff, host_len.value_or(int(host.size()))});
  out.insert(out.end(), host.begin(), host.end());
  return out;
}

DecodeStep decode(const std::vector<std::byte>& in, std::uint32_t max = kMax) {
  return decode_frame(in, max);
}

void expect_error(const std::vector<std::byte>& in, Error want, std::uint32_t max = kMax) {
  auto step = decode(in, max);
  EXPECT_EQ(step.status, Status::error);
  EXPECT_EQ(step.error, make_error_code(want)) << step.error.message();
}

template <typename T>
T decode_one(const EncodedFrame& f, FrameType type, std::uint32_t stream) {
  auto in = bytes_of(f);
  auto step = decode(in);
  EXPECT_EQ(step.status, Status::frame) << step.error.message();
  EXPECT_EQ(step.consumed, in.size());
  EXPECT_EQ(step.header.type, type);
  EXPECT_EQ(step.header.stream_id, stream);
  EXPECT_EQ(step.header.length, in.size() - kFrameHeaderSize);
  EXPECT_TRUE(std::holds_alternative<T>(step.body));
  return std::holds_alternative<T>(step.body) ? std::get<T>(step.body) : T{};
}

// ---- hello ---------------------------------------------------------------------------------

Hello sample_hello() {
  Hello h;
  h.role = Role::agent;
  for (std::size_t i = 0; i < h.session_id.size(); ++i) h.session_id[i] = std::byte(i * 7 + 1);
  h.capabilities = kCapResume | 0x80000000u;
  h.max_frame_payload = 1u << 20;
  h.max_streams = 123456;
  h.initial_window = 64u << 20;
  h.has_auth = true;
  for (std::size_t i = 0; i < h.auth.size(); ++i) h.auth[i] = std::byte(255 - i);
  return h;
}

TEST(CodecHello, RoundTripKeepsEveryField) {
  auto h = sample_hello();
  auto wire = encode_hello(h);
  ASSERT_EQ(wire.size(), kHelloSize);
  EXPECT_EQ(wire[0], std::byte{'L'});
  auto back = decode_hello(wire);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->version, kProtocolVersion);
  EXPECT_EQ(back->role, Role::agent);
  EXPECT_EQ(back->session_id, h.session_id);
  EXPECT_EQ(back->capabilities, h.capabilities);
  EXPECT_EQ(back->max_frame_payload, h.max_frame_payload);
  EXPECT_EQ(back->max_streams, h.max_streams);
  EXPECT_EQ(back->initial_window, h.initial_window);
  EXPECT_TRUE(back->has_auth);
  EXPECT_EQ(back->auth, h.auth);
  EXPECT_FALSE(back->resume);
}

TEST(CodecHello, ResumeFlagRoundTripsApartFromTheOthers) {
  auto h = sample_hello();
  h.resume = true;
  h.capabilities = kCapResume;
  auto back = decode_hello(encode_hello(h));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_TRUE(back->resume);
  EXPECT_TRUE(back->has_auth);
  EXPECT_FALSE(back->refused);
  EXPECT_EQ(back->capabilities, kCapResume);
}

TEST(CodecHello, RoundTripWithoutAuthAndAtTheLowerLimits) {
  Hello h;
  h.role = Role::proxy;
  h.max_frame_payload = kMinFramePayload;
  h.initial_window = kMinFramePayload;
  h.max_streams = 1;
  auto back = decode_hello(encode_hello(h));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->role, Role::proxy);
  EXPECT_FALSE(back->has_auth);
  EXPECT_EQ(back->max_streams, 1u);
}

TEST(CodecHello, RejectsBadMagic) {
  for (std::size_t i = 0; i < 4; ++i) {
    auto wire = encode_hello(sample_hello());
    wire[i] ^= std::byte{0x20};
    auto r = decode_hello(wire);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(Error::bad_magic));
  }
  std::array<std::byte, kHelloSize> zeros{};
  EXPECT_EQ(decode_hello(zeros).error(), make_error_code(Error::bad_magic));
}

TEST(CodecHello, RejectsOtherVersions) {
  for (int v : {0, 2, 255}) {
    auto wire = encode_hello(sample_hello());
    wire[4] = std::byte(v);
    auto r = decode_hello(wire);
    ASSERT_FALSE(r) << v;
    EXPECT_EQ(r.error(), make_error_code(Error::bad_version)) << v;
  }
}

TEST(CodecHello, RejectsUnknownRoles) {
  for (int role : {0, 3, 255}) {
    auto wire = encode_hello(sample_hello());
    wire[5] = std::byte(role);
    auto r = decode_hello(wire);
    ASSERT_FALSE(r) << role;
    EXPECT_EQ(r.error(), make_error_code(Error::bad_role)) << role;
  }
}

TEST(CodecHello, RejectsFieldsOutOfRange) {
  auto bad = [](auto mutate) {
    auto h = sample_hello();
    mutate(h);
    auto r = decode_hello(encode_hello(h));
    return !r && r.error() == make_error_code(Error::bad_hello);
  };
  EXPECT_TRUE(bad([](Hello& h) { h.max_frame_payload = kMinFramePayload - 1; }));
  EXPECT_TRUE(bad([](Hello& h) { h.max_frame_payload = kMaxFramePayloadLimit + 1; }));
  EXPECT_TRUE(bad([](Hello& h) { h.max_frame_payload = 0; }));
  EXPECT_TRUE(bad([](Hello& h) { h.initial_window = kMinFramePayload - 1; }));
  EXPECT_TRUE(bad([](Hello& h) { h.initial_window = kMaxWindowLimit + 1; }));
  EXPECT_TRUE(bad([](Hello& h) { h.initial_window = 0xFFFFFFFFu; }));
  EXPECT_TRUE(bad([](Hello& h) { h.max_streams = 0; }));
  EXPECT_FALSE(bad([](Hello& h) { h.max_streams = 0xFFFFFFFFu; }));
}

// ---- frames: round trips -------------------------------------------------------------------

TEST(CodecFrames, DataHeaderRoundTripWithAndWithoutFin) {
  for (bool fin : {false, true}) {
    auto header = encode_data_header(7, 5, fin);
    std::vector<std::byte> in(header.begin(), header.end());
    auto payload = to_bytes("hello");
    in.insert(in.end(), payload.begin(), payload.end());
    auto step = decode(in);
    ASSERT_EQ(step.status, Status::frame) << step.error.message();
    EXPECT_EQ(step.header.type, FrameType::data);
    EXPECT_EQ(step.header.stream_id, 7u);
    EXPECT_EQ((step.header.flags & kFlagFin) != 0, fin);
    EXPECT_EQ(test::to_text(step.payload), "hello");
    EXPECT_EQ(step.consumed, in.size());
    EXPECT_TRUE(std::holds_alternative<std::monostate>(step.body));
  }
}

TEST(CodecFrames, EmptyFinAndMaximumSizeData) {
  auto header = encode_data_header(3, 0, true);
  auto step = decode({header.begin(), header.end()});
  ASSERT_EQ(step.status, Status::frame);
  EXPECT_TRUE(step.payload.empty());
  EXPECT_EQ(step.header.flags & kFlagFin, kFlagFin);

  auto big = encode_data_header(3, kMax, false);
  std::vector<std::byte> in(big.begin(), big.end());
  in.resize(kFrameHeaderSize + kMax, std::byte{0x5a});
  step = decode(in);
  ASSERT_EQ(step.status, Status::frame) << step.error.message();
  EXPECT_EQ(step.payload.size(), kMax);
}

TEST(CodecFrames, OpenRoundTripForEveryTargetKind) {
  const std::vector<Target> targets = {
      {Target::Kind::name, "redis-master.dev.svc.cluster.local", 6379},
      {Target::Kind::name, "A_b-9", 1},
      {Target::Kind::name, std::string(kMaxHostNameSize, 'x'), 65535},
      {Target::Kind::ipv4, "10.96.0.10", 53},
      {Target::Kind::ipv4, "0.0.0.0", 1},
      {Target::Kind::ipv6, "2001:db8::1", 443},
      {Target::Kind::ipv6, "::1", 8080},
      {Target::Kind::ipv6, "fe80::1:2:3:4", 22},
      {Target::Kind::inbound, "", 8080},
  };
  for (const auto& t : targets) {
    auto f = encode_open(9, t);
    ASSERT_TRUE(f) << t.to_string();
    auto open = decode_one<OpenFrame>(*f, FrameType::open, 9);
    EXPECT_EQ(open.target, t) << t.to_string() << " came back as " << open.target.to_string();
  }
}

TEST(CodecFrames, OpenResultRoundTripForEveryCode) {
  for (int c = 0; c <= int(OpenCode::internal); ++c) {
    auto f = encode_open_result(4, OpenCode(c), "because " + std::to_string(c));
    auto r = decode_one<OpenResultFrame>(f, FrameType::open_result, 4);
    EXPECT_EQ(r.code, OpenCode(c));
    EXPECT_EQ(r.reason, "because " + std::to_string(c));
  }
}

TEST(CodecFrames, WindowResetPingGoAwayRoundTrip) {
  auto w = decode_one<WindowFrame>(encode_window(5, {1ull << 40, (1ull << 40) + 65536}),
                                   FrameType::window, 5);
  EXPECT_EQ(w.consumed, 1ull << 40);
  EXPECT_EQ(w.limit, (1ull << 40) + 65536);

  for (int c = 0; c <= int(ResetCode::session_closing); ++c) {
    auto r = decode_one<ResetFrame>(encode_reset(11, ResetCode(c), "r"), FrameType::reset, 11);
    EXPECT_EQ(r.code, ResetCode(c));
    EXPECT_EQ(r.reason, "r");
  }

  for (bool ack : {false, true}) {
    auto f = encode_ping(0x0102030405060708ull, ack);
    auto in = bytes_of(f);
    auto step = decode(in);
    ASSERT_EQ(step.status, Status::frame);
    EXPECT_EQ(step.header.stream_id, 0u);
    EXPECT_EQ((step.header.flags & kFlagAck) != 0, ack);
    EXPECT_EQ(std::get<PingFrame>(step.body).opaque, 0x0102030405060708ull);
  }

  for (int c = 0; c <= int(GoAwayCode::ping_timeout); ++c) {
    auto g = decode_one<GoAwayFrame>(encode_go_away(77, GoAwayCode(c), "bye"),
                                     FrameType::go_away, 0);
    EXPECT_EQ(g.last_stream_id, 77u);
    EXPECT_EQ(g.code, GoAwayCode(c));
    EXPECT_EQ(g.reason, "bye");
  }
}

TEST(CodecFrames, ResumeEntriesAndTheEndOfTheListRoundTrip) {
  for (bool fin_received : {false, true}) {
    for (bool fin_delivered : {false, true}) {
      if (fin_delivered && !fin_received) continue;
      ResumeFrame entry{.received = (1ull << 40) + 3, .fin_received = fin_received,
                        .fin_delivered = fin_delivered};
      auto r = decode_one<ResumeFrame>(encode_resume(9, entry), FrameType::resume, 9);
      EXPECT_EQ(r.received, entry.received);
      EXPECT_EQ(r.fin_received, fin_received);
      EXPECT_EQ(r.fin_delivered, fin_delivered);
    }
  }
  auto end = decode_one<ResumeFrame>(encode_resume(0, {.last_peer_id = 0xFFFFFFF1u}),
                                     FrameType::resume, 0);
  EXPECT_EQ(end.last_peer_id, 0xFFFFFFF1u);
}

TEST(CodecFrames, WindowCarriesTheFinDeliveredFlag) {
  auto in = bytes_of(encode_window_fin_delivered(3, {10, 20}));
  auto step = decode(in);
  ASSERT_EQ(step.status, Status::frame);
  EXPECT_EQ(step.header.type, FrameType::window);
  EXPECT_EQ(step.header.flags & kFlagFin, kFlagFin);
  EXPECT_EQ(std::get<WindowFrame>(step.body).consumed, 10u);
}

TEST(CodecDecoder, ResumeEntriesWithImpossibleFlags) {
  // Unknown bits, and a FIN delivered that never arrived.
  expect_error(raw_frame(7, 0, 1, be({0, 0, 0, 0, 0, 0, 0, 5, 4})), Error::bad_frame);
  expect_error(raw_frame(7, 0, 1, be({0, 0, 0, 0, 0, 0, 0, 5, 2})), Error::bad_frame);
  // An entry's payload on stream 0, the end's on a stream.
  expect_error(raw_frame(7, 0, 0, be({0, 0, 0, 0, 0, 0, 0, 5, 1})), Error::bad_frame);
  expect_error(raw_frame(7, 0, 3, be({0, 0, 0, 5})), Error::bad_frame);
}

TEST(CodecFrames, ReasonsAreClippedTo512Bytes) {
  const std::string long_reason(2000, 'r');
  auto r = decode_one<OpenResultFrame>(encode_open_result(1, OpenCode::refused, long_reason),
                                       FrameType::open_result, 1);
  EXPECT_EQ(r.reason, std::string(kMaxReasonSize, 'r'));
  auto rs = decode_one<ResetFrame>(encode_reset(1, ResetCode::internal, long_reason),
                                   FrameType::reset, 1);
  EXPECT_EQ(rs.reason.size(), kMaxReasonSize);
  auto g = encode_go_away(0, GoAwayCode::internal, long_reason);
  EXPECT_EQ(g.size, kMaxControlFrameSize);  // the largest control frame fills the buffer
  EXPECT_EQ(decode_one<GoAwayFrame>(g, FrameType::go_away, 0).reason.size(), kMaxReasonSize);
}

TEST(CodecFrames, SeveralFramesInOneBufferDecodeInOrder) {
  std::vector<std::byte> in;
  auto add = [&](std::span<const std::byte> b) { in.insert(in.end(), b.begin(), b.end()); };
  add(encode_ping(1, false).view());
  auto dh = encode_data_header(1, 3, false);
  add(dh);
  add(to_bytes("abc"));
  add(encode_window(1, {3, 100}).view());
  add(encode_go_away(1, GoAwayCode::normal, "").view());
  std::vector<FrameType> seen;
  std::span<const std::byte> rest(in);
  while (!rest.empty()) {
    auto step = decode_frame(rest, kMax);
    ASSERT_EQ(step.status, Status::frame);
    seen.push_back(step.header.type);
    rest = rest.subspan(step.consumed);
  }
  EXPECT_EQ(seen, (std::vector<FrameType>{FrameType::ping, FrameType::data, FrameType::window,
                                          FrameType::go_away}));
}

TEST(CodecFrames, EncodeOpenRefusesTargetsThatCannotBeExpressed) {
  EXPECT_FALSE(encode_open(1, {Target::Kind::name, "", 80}));
  EXPECT_FALSE(encode_open(1, {Target::Kind::name, std::string(kMaxHostNameSize + 1, 'a'), 80}));
  EXPECT_FALSE(encode_open(1, {Target::Kind::name, "bad host", 80}));
  EXPECT_FALSE(encode_open(1, {Target::Kind::name, "evil/../x", 80}));
  EXPECT_FALSE(encode_open(1, {Target::Kind::name, "redis", 0}));
  EXPECT_FALSE(encode_open(1, {Target::Kind::ipv4, "1.2.3", 80}));
  EXPECT_FALSE(encode_open(1, {Target::Kind::ipv4, "::1", 80}));
  EXPECT_FALSE(encode_open(1, {Target::Kind::ipv6, "10.0.0.1", 80}));
  EXPECT_FALSE(encode_open(1, {Target::Kind::inbound, "", 0}));
}

// ---- decoder: truncation -------------------------------------------------------------------

std::vector<std::vector<std::byte>> every_frame_kind() {
  std::vector<std::vector<std::byte>> frames;
  auto dh = encode_data_header(1, 4, true);
  std::vector<std::byte> data(dh.begin(), dh.end());
  auto p = to_bytes("data");
  data.insert(data.end(), p.begin(), p.end());
  frames.push_back(data);
  frames.push_back(bytes_of(*encode_open(1, {Target::Kind::name, "svc.ns", 80})));
  frames.push_back(bytes_of(*encode_open(3, {Target::Kind::ipv6, "2001:db8::2", 80})));
  frames.push_back(bytes_of(encode_open_result(1, OpenCode::refused, "no")));
  frames.push_back(bytes_of(encode_window(1, {10, 20})));
  frames.push_back(bytes_of(encode_reset(1, ResetCode::cancel, "x")));
  frames.push_back(bytes_of(encode_ping(42, true)));
  frames.push_back(bytes_of(encode_go_away(3, GoAwayCode::replaced, "newer")));
  return frames;
}

TEST(CodecDecoder, EveryTruncationNeedsMoreAndNeverFails) {
  for (const auto& frame : every_frame_kind()) {
    for (std::size_t len = 0; len < frame.size(); ++len) {
      // A copy of exactly `len` bytes, so that reading past it is caught by sanitizers.
      std::vector<std::byte> prefix(frame.begin(), frame.begin() + len);
      auto step = decode_frame(prefix, kMax);
      EXPECT_EQ(step.status, Status::need_more) << "len " << len << " of " << frame.size();
      EXPECT_EQ(step.consumed, 0u);
      EXPECT_FALSE(step.error);
    }
    EXPECT_EQ(decode_frame(frame, kMax).status, Status::frame);
  }
}

// ---- decoder: malformed input --------------------------------------------------------------

TEST(CodecDecoder, OversizeDataFailsFromTheHeaderAlone) {
  auto h = encode_data_header(1, kMax + 1, false);
  expect_error({h.begin(), h.end()}, Error::frame_too_large);
  // The limit is the one this side announced, not a constant.
  auto small = encode_data_header(1, 2048, false);
  expect_error({small.begin(), small.end()}, Error::frame_too_large, 1024);
  auto huge = encode_data_header(1, 0xFFFFFFFFu, false);
  expect_error({huge.begin(), huge.end()}, Error::frame_too_large);
}

TEST(CodecDecoder, OversizeControlFrameFails) {
  for (auto type : {FrameType::open, FrameType::open_result, FrameType::window,
                    FrameType::reset, FrameType::ping, FrameType::go_away}) {
    expect_error(raw_frame(std::uint8_t(type), 0, 1, {}, kMaxControlFrameSize + 1),
                 Error::frame_too_large);
    expect_error(raw_frame(std::uint8_t(type), 0, 0, {}, 0xFFFFFFFFu), Error::frame_too_large);
  }
}

TEST(CodecDecoder, UnknownFrameTypes) {
  for (int type : {int(kFrameTypeCount), 9, 0x7f, 0xff}) {
    expect_error(raw_frame(std::uint8_t(type), 0, 1, be({1, 2, 3})), Error::unknown_frame_type);
    // Known from the header alone, before the payload arrives.
    expect_error(raw_frame(std::uint8_t(type), 0, 1, {}, 100), Error::unknown_frame_type);
  }
}

TEST(CodecDecoder, DataOnStreamZero) {
  auto h = encode_data_header(0, 3, false);
  std::vector<std::byte> in(h.begin(), h.end());
  in.resize(in.size() + 3);
  expect_error(in, Error::stream_id_misuse);
}

TEST(CodecDecoder, StreamControlFramesOnStreamZero) {
  expect_error(bytes_of(*encode_open(0, {Target::Kind::name, "a", 1})), Error::stream_id_misuse);
  expect_error(bytes_of(encode_open_result(0, OpenCode::ok, "")), Error::stream_id_misuse);
  expect_error(bytes_of(encode_window(0, {0, 10})), Error::stream_id_misuse);
  expect_error(bytes_of(encode_reset(0, ResetCode::cancel, "")), Error::stream_id_misuse);
}

TEST(CodecDecoder, SessionControlFramesOnAStream) {
  auto ping = bytes_of(encode_ping(1, false));
  ping[11] = std::byte{5};
  expect_error(ping, Error::stream_id_misuse);
  auto goaway = bytes_of(encode_go_away(0, GoAwayCode::normal, "x"));
  goaway[8] = std::byte{0x80};
  expect_error(goaway, Error::stream_id_misuse);
}

TEST(CodecDecoder, OpenWithABadHostName) {
  const std::vector<std::string> hosts = {"bad host", "a/b",     "x\ny", std::string("nul\0l", 5),
                                          "caf\xc3\xa9", "a:b", "[::1]"};
  for (const auto& host : hosts) {
    expect_error(raw_frame(1, 0, 1, open_payload(1, 80, to_bytes(host))), Error::bad_frame);
  }
}

TEST(CodecDecoder, OpenWithAnEmptyNameOrPortZero) {
  expect_error(raw_frame(1, 0, 1, open_payload(1, 80, {})), Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(1, 0, to_bytes("redis"))), Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(2, 0, be({10, 0, 0, 1}))), Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(3, 0, std::vector<std::byte>(16))),
               Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(4, 0, {})), Error::bad_frame);
}

TEST(CodecDecoder, OpenWithAWrongAddressLength) {
  expect_error(raw_frame(1, 0, 1, open_payload(2, 80, be({10, 0, 0}))), Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(2, 80, std::vector<std::byte>(16))),
               Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(3, 80, be({10, 0, 0, 1}))), Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(3, 80, std::vector<std::byte>(15))),
               Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(4, 80, be({1}))), Error::bad_frame);
  // A host length that promises more bytes than the payload holds.
  expect_error(raw_frame(1, 0, 1, open_payload(1, 80, to_bytes("abc"), 200)), Error::bad_frame);
  expect_error(raw_frame(1, 0, 1, open_payload(2, 80, be({10, 0, 0, 1}), 16)), Error::bad_frame);
}

TEST(CodecDecoder, OpenWithAnUnknownTargetKind) {
  for (int kind : {0, 5, 255}) {
    expect_error(raw_frame(1, 0, 1, open_payload(kind, 80, be({10, 0, 0, 1}))), Error::bad_frame);
  }
}

TEST(CodecDecoder, OpenResultWithAnUnknownCode) {
  expect_error(raw_frame(2, 0, 1, be({int(OpenCode::internal) + 1, 0, 0, 0})), Error::bad_frame);
  expect_error(raw_frame(2, 0, 1, be({0xff, 0, 0, 0})), Error::bad_frame);
}

TEST(CodecDecoder, WindowWithConsumedBeyondLimit) {
  expect_error(bytes_of(encode_window(1, {101, 100})), Error::bad_frame);
  expect_error(bytes_of(encode_window(1, {~0ull, 0})), Error::bad_frame);
  EXPECT_EQ(decode(bytes_of(encode_window(1, {100, 100}))).status, Status::frame);
}

TEST(CodecDecoder, TrailingOrMissingBytesInControlPayloads) {
  std::vector<std::vector<std::byte>> frames = {
      bytes_of(*encode_open(1, {Target::Kind::name, "svc", 80})),
      bytes_of(*encode_open(1, {Target::Kind::ipv4, "10.0.0.1", 80})),
      bytes_of(*encode_open(1, {Target::Kind::inbound, "", 80})),
      bytes_of(encode_open_result(1, OpenCode::ok, "fine")),
      bytes_of(encode_window(1, {1, 2})),
      bytes_of(encode_reset(1, ResetCode::cancel, "why")),
      bytes_of(encode_ping(9, false)),
      bytes_of(encode_go_away(0, GoAwayCode::normal, "bye")),
      bytes_of(encode_resume(1, {.received = 7})),
      bytes_of(encode_resume(0, {.last_peer_id = 7})),
  };
  for (const auto& f : frames) {
    std::vector<std::byte> payload(f.begin() + kFrameHeaderSize, f.end());
    const auto type = std::uint8_t(f[4]);
    const auto stream = std::uint32_t(f[11]);
    auto longer = payload;
    longer.push_back(std::byte{0});
    expect_error(raw_frame(type, 0, stream, longer), Error::bad_frame);
    auto shorter = payload;
    shorter.pop_back();
    expect_error(raw_frame(type, 0, stream, shorter), Error::bad_frame);
    expect_error(raw_frame(type, 0, stream, {}), Error::bad_frame);
  }
}

TEST(CodecDecoder, ReasonLengthBeyondThePayload) {
  expect_error(raw_frame(4, 0, 1, be({0, 0, 0, 1, 0, 10, 'a', 'b'})), Error::bad_frame);
  expect_error(raw_frame(6, 0, 0, be({0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})), Error::bad_frame);
}

TEST(CodecErrors, EveryErrorHasItsOwnMessage) {
  std::set<std::string> messages;
  for (int e = int(Error::truncated); e <= int(Error::peer_went_away); ++e) {
    auto ec = make_error_code(Error(e));
    EXPECT_STREQ(ec.category().name(), "lpk.tunnel");
    EXPECT_TRUE(messages.insert(ec.message()).second) << ec.message();
  }
  EXPECT_STREQ(to_string(OpenCode(200)), "unknown open result");
  EXPECT_STREQ(to_string(ResetCode(200)), "unknown reset code");
  EXPECT_STREQ(to_string(GoAwayCode(200)), "unknown go-away code");
  EXPECT_EQ((Target{Target::Kind::ipv6, "::1", 80}.to_string()), "[::1]:80");
  EXPECT_EQ((Target{Target::Kind::inbound, "", 80}.to_string()), "inbound port 80");
}

}  // namespace
}  // namespace lpk::tunnel
