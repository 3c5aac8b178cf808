// A real Session against a fake peer that speaks the wire format by hand over loopback TCP:
// malformed frames, stream id misuse, window overflow and stream limits, byte by byte.
#include <gtest/gtest.h>
#include <malloc.h>

#include "proxy/tunnel/codec.hpp"
#include "proxy/tunnel/error.hpp"
#include "proxy/tunnel/session.hpp"
#include "tests/proxy/tunnel/test_util.hpp"
#include "tests/slack.hpp"

namespace lpk::tunnel {
namespace {

using namespace test;

constexpr std::uint32_t kPeerMaxPayload = 64 * 1024;

struct Frame {
  FrameHeader header;
  ControlBody body;
  std::string payload;
};

/// The hand-driven end of a link.
class FakePeer {
 public:
  explicit FakePeer(tcp::socket s) : socket_(std::move(s)) {}

  asio::awaitable<error_code> send(std::span<const std::byte> bytes) {
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                                              kTuple);
    co_return ec;
  }
  asio::awaitable<error_code> send(const EncodedFrame& f) { co_return co_await send(f.view()); }
  asio::awaitable<error_code> send_data(std::uint32_t id, std::string_view data, bool fin = false) {
    auto h = encode_data_header(id, std::uint32_t(data.size()), fin);
    std::vector<std::byte> out(h.begin(), h.end());
    auto b = to_bytes(data);
    out.insert(out.end(), b.begin(), b.end());
    co_return co_await send(out);
  }
  asio::awaitable<error_code> send_open(std::uint32_t id, Target t) {
    co_return co_await send(*encode_open(id, t));
  }

  /// The next frame the session sent; nullopt at the end of the link.
  asio::awaitable<std::optional<Frame>> next() {
    for (;;) {
      auto step = decode_frame(std::span(in_.data() + begin_, in_.size() - begin_),
                               kPeerMaxPayload);
      if (step.status == DecodeStep::Status::error) {
        ADD_FAILURE() << "the session sent a malformed frame: " << step.error.message();
        co_return std::nullopt;
      }
      if (step.status == DecodeStep::Status::frame) {
        Frame f{step.header, step.body, to_text(step.payload)};
        begin_ += step.consumed;
        co_return f;
      }
      std::array<std::byte, 65536> buf;
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf), kTuple);
      if (ec) {
        end_ = ec;
        co_return std::nullopt;
      }
      in_.insert(in_.end(), buf.begin(), buf.begin() + n);
    }
  }
  /// Skips frames until one satisfies `match`.
  asio::awaitable<std::optional<Frame>> expect(std::function<bool(const Frame&)> match) {
    for (;;) {
      auto f = co_await next();
      if (!f || match(*f)) co_return f;
    }
  }
  /// Reads up to the end of the link; returns the GOAWAY seen on the way, if any.
  asio::awaitable<std::optional<GoAwayFrame>> until_end() {
    std::optional<GoAwayFrame> goaway;
    while (auto f = co_await next()) {
      if (auto* g = std::get_if<GoAwayFrame>(&f->body)) goaway = *g;
    }
    co_return goaway;
  }
  error_code end() const { return end_; }
  tcp::socket& socket() { return socket_; }

 private:
  tcp::socket socket_;
  std::vector<std::byte> in_;
  std::size_t begin_ = 0;
  error_code end_;
};

bool is(const Frame& f, FrameType type, std::uint32_t id) {
  return f.header.type == type && f.header.stream_id == id;
}

struct Setup {
  std::shared_ptr<Session> session;
  std::shared_ptr<Running> running;
  std::shared_ptr<TestDialer> dialer;
  std::unique_ptr<FakePeer> peer;
};

/// A real session with role `role` (agent by default), and a fake peer in the other role
/// that has completed the hello exchange.
// (No default arguments: GCC 12 destroys the temporaries of a default argument to a coroutine
// twice. Callers pass named options.)
asio::awaitable<Setup> session_with_fake_peer(SessionOptions options, Role role) {
  auto ex = co_await asio::this_coro::executor;
  auto [x, y] = co_await socket_pair();
  options.role = role;
  Setup s;
  s.dialer = std::make_shared<TestDialer>(ex);
  s.peer = std::make_unique<FakePeer>(std::move(x));
  Hello hello;
  hello.role = role == Role::agent ? Role::proxy : Role::agent;
  hello.session_id = random_session_id();
  hello.max_frame_payload = kPeerMaxPayload;
  auto wire = encode_hello(hello);
  auto send_hello = [&]() -> asio::awaitable<void> {
    if (role == Role::agent) {
      co_await s.peer->send(wire);
    }
    std::array<std::byte, kHelloSize> answer;
    co_await asio::async_read(s.peer->socket(), asio::buffer(answer), asio::use_awaitable);
    if (role == Role::proxy) {
      // Answer with the proxy's own session id, as an agent does.
      std::copy_n(answer.begin() + 8, kSessionIdSize, wire.begin() + 8);
      co_await s.peer->send(wire);
    }
  };
  auto established = co_await (
      Session::establish(std::make_unique<TcpLink>(std::move(y)), options, s.dialer,
                         random_session_id()) &&
      send_hello());
  if (!established) throw std::runtime_error("handshake: " + established.error().message());
  s.session = *established;
  s.running = start_running(ex, s.session);
  co_return s;
}

asio::awaitable<Setup> session_with_fake_peer(SessionOptions options) {
  co_return co_await session_with_fake_peer(options, Role::agent);
}

asio::awaitable<Setup> session_with_fake_peer() {
  SessionOptions options;
  co_return co_await session_with_fake_peer(options, Role::agent);
}

// ---- malformed input ends the session, with a GOAWAY that says protocol error --------------

struct BadInput {
  const char* name;
  std::function<std::vector<std::byte>()> bytes;
  Error error;
};

std::vector<std::byte> raw(std::uint8_t type, std::uint8_t flags, std::uint32_t id,
                           std::vector<std::byte> payload,
                           std::optional<std::uint32_t> length = std::nullopt) {
  const auto len = length.value_or(std::uint32_t(payload.size()));
  std::vector<std::byte> out(kFrameHeaderSize);
  encode_header({len, FrameType::data, flags, id},
                std::span<std::byte, kFrameHeaderSize>(out.data(), kFrameHeaderSize));
  out[4] = std::byte(type);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<std::byte> concat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

using test::bytes_of;

// Ports nobody dials in these tests: the fake peer's OPENs only need a well-formed target.
const Target kHang{Target::Kind::ipv4, "127.0.0.1", 9};

const std::vector<BadInput>& bad_inputs() {
  static const std::vector<BadInput> inputs = {
      {"unknown frame type", [] { return raw(42, 0, 1, {std::byte{1}}); },
       Error::unknown_frame_type},
      {"oversize DATA", [] { return raw(0, 0, 1, {}, SessionOptions{}.max_frame_payload + 1); },
       Error::frame_too_large},
      {"oversize control", [] { return raw(3, 0, 1, {}, 100000); }, Error::frame_too_large},
      {"DATA on stream 0", [] { return raw(0, 0, 0, {std::byte{1}}); }, Error::stream_id_misuse},
      {"PING on a stream", [] { auto f = bytes_of(encode_ping(1, false)); f[11] = std::byte{3};
                                return f; }, Error::stream_id_misuse},
      {"WINDOW on stream 0", [] { return bytes_of(encode_window(0, {0, 1})); },
       Error::stream_id_misuse},
      {"OPEN with a bad host", [] {
         return raw(1, 0, 1, concat({{std::byte{1}, std::byte{0}, std::byte{0}, std::byte{80},
                                      std::byte{3}}, to_bytes("a b")}));
       }, Error::bad_frame},
      {"WINDOW consumed beyond limit", [] { return bytes_of(encode_window(1, {5, 4})); },
       Error::bad_frame},
      {"OPEN with the agent's parity", [] { return bytes_of(*encode_open(2, kHang)); },
       Error::stream_id_misuse},
      {"OPEN reusing an id", [] {
         return concat({bytes_of(*encode_open(1, kHang)), bytes_of(*encode_open(1, kHang))});
       }, Error::stream_id_misuse},
      {"OPEN going backwards", [] {
         return concat({bytes_of(*encode_open(5, kHang)), bytes_of(*encode_open(3, kHang))});
       }, Error::stream_id_misuse},
      {"DATA for a never opened stream", [] { return raw(0, 0, 7, {std::byte{1}}); },
       Error::stream_id_misuse},
      {"DATA for a never opened own-parity stream", [] { return raw(0, 0, 2, {std::byte{1}}); },
       Error::stream_id_misuse},
      {"WINDOW for a never opened stream", [] { return bytes_of(encode_window(9, {0, 100})); },
       Error::stream_id_misuse},
      {"RESET for a never opened stream", [] {
         return bytes_of(encode_reset(11, ResetCode::cancel, ""));
       }, Error::stream_id_misuse},
      {"OPEN_RESULT for a stream the peer opened", [] {
         return concat({bytes_of(*encode_open(1, kHang)),
                        bytes_of(encode_open_result(1, OpenCode::ok, ""))});
       }, Error::stream_id_misuse},
  };
  return inputs;
}

TEST(SessionPeer, MalformedInputEndsTheSessionWithItsReason) {
  for (const auto& input : bad_inputs()) {
    SCOPED_TRACE(input.name);
    asio::io_context io;
    run_task(io, [&]() -> asio::awaitable<void> {
      auto s = co_await session_with_fake_peer();
      s.dialer->hang_ports.insert(kHang.port);
      co_await s.peer->send(input.bytes());
      auto goaway = co_await s.peer->until_end();
      CO_ASSERT_TRUE(goaway.has_value()) << "no GOAWAY before the end of the link";
      EXPECT_EQ(goaway->code, GoAwayCode::protocol_error);
      EXPECT_FALSE(goaway->reason.empty());
      EXPECT_TRUE(co_await s.running->ended.wait());
      EXPECT_EQ(s.running->reason, make_error_code(input.error)) << s.running->reason.message();
      EXPECT_TRUE(s.session->stopped());
      s.dialer->release();
    }());
  }
}

TEST(SessionPeer, TruncatedFrameThenEndOfLinkEndsQuietly) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto s = co_await session_with_fake_peer();
    auto open = bytes_of(*encode_open(1, kHang));
    s.dialer->hang_ports.insert(kHang.port);
    co_await s.peer->send(std::span(open).first(open.size() - 3));
    s.peer->socket().shutdown(tcp::socket::shutdown_send);
    EXPECT_TRUE(co_await s.running->ended.wait());
    EXPECT_EQ(s.running->reason, asio::error::eof) << s.running->reason.message();
    EXPECT_EQ(s.dialer->dials, 0) << "half an OPEN opens nothing";
    s.dialer->release();
  }());
}

TEST(SessionPeer, RandomGarbageNeverCrashes) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    asio::io_context io;
    run_task(io, [&]() -> asio::awaitable<void> {
      auto s = co_await session_with_fake_peer();
      s.dialer->hang_ports.insert(kHang.port);
      auto junk = to_bytes(pattern(4096, seed));
      co_await s.peer->send(junk);
      s.peer->socket().shutdown(tcp::socket::shutdown_send);
      co_await s.peer->until_end();
      EXPECT_TRUE(co_await s.running->ended.wait());
      EXPECT_TRUE(s.session->stopped());
      s.dialer->release();
    }());
  }
}

// A fake agent against a real proxy session: the proxy checks the agent's frames too.
TEST(SessionPeer, ProxySideRejectsAnOpenWithItsOwnParity) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    SessionOptions options;
    auto s = co_await session_with_fake_peer(options, Role::proxy);
    // (A named Target: GCC 12 destroys brace-initialized temporaries in a co_await twice.)
    const Target inbound{Target::Kind::inbound, "", 80};
    co_await s.peer->send(*encode_open(1, inbound));
    auto goaway = co_await s.peer->until_end();
    CO_ASSERT_TRUE(goaway.has_value());
    EXPECT_EQ(goaway->code, GoAwayCode::protocol_error);
    EXPECT_TRUE(co_await s.running->ended.wait());
    EXPECT_EQ(s.running->reason, make_error_code(Error::stream_id_misuse));
  }());
}

// ---- what must end only a stream, or nothing -----------------------------------------------

asio::awaitable<bool> still_answers_pings(FakePeer& peer, std::uint64_t opaque) {
  co_await peer.send(encode_ping(opaque, false));
  auto pong = co_await peer.expect([&](const Frame& f) {
    auto* p = std::get_if<PingFrame>(&f.body);
    return p && (f.header.flags & kFlagAck) && p->opaque == opaque;
  });
  co_return pong.has_value();
}

TEST(SessionPeer, FramesForAClosedStreamAreIgnored) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto s = co_await session_with_fake_peer();
    ClosedPort gone(io);
    const Target refused = gone.target();
    co_await s.peer->send_open(1, refused);
    auto result = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::open_result, 1); });
    CO_ASSERT_TRUE(result.has_value());
    EXPECT_EQ(std::get<OpenResultFrame>(result->body).code, OpenCode::refused);
    // Stream 1 is closed now; frames that crossed the refusal are dropped.
    co_await s.peer->send_data(1, "late bytes");
    co_await s.peer->send(encode_window(1, {0, 1 << 20}));
    co_await s.peer->send(encode_reset(1, ResetCode::cancel, "late"));
    co_await s.peer->send_data(1, "", true);
    EXPECT_TRUE(co_await still_answers_pings(*s.peer, 1234));
    EXPECT_FALSE(s.session->stopped());
    s.session->stop();
    EXPECT_TRUE(co_await s.running->ended.wait());
  }());
}

TEST(SessionPeer, WindowOverflowResetsOnlyThatStream) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    SessionOptions options;
    options.initial_window = 4096;
    auto s = co_await session_with_fake_peer(options);
    s.dialer->hang_ports.insert(kHang.port);  // stream 1 never drains: nothing is consumed
    co_await s.peer->send_open(1, kHang);
    co_await s.peer->send_data(1, pattern(4096));
    co_await s.peer->send_data(1, "!");
    auto reset = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::reset, 1); });
    CO_ASSERT_TRUE(reset.has_value()) << "no RESET for the stream that overflowed";
    EXPECT_EQ(std::get<ResetFrame>(reset->body).code, ResetCode::flow_control);
    co_await s.peer->send_data(1, "more after the reset is ignored");
    // Another stream works normally.
    co_await s.peer->send_open(3, server.target());
    co_await s.peer->send_data(3, "hello");
    auto ok = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::open_result, 3); });
    CO_ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(std::get<OpenResultFrame>(ok->body).code, OpenCode::ok);
    auto data = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::data, 3); });
    CO_ASSERT_TRUE(data.has_value());
    EXPECT_EQ(data->payload, "hello");
    EXPECT_FALSE(s.session->stopped());
    s.dialer->release();
    s.session->stop();
    EXPECT_TRUE(co_await s.running->ended.wait());
  }());
}

TEST(SessionPeer, WindowThatAcksUnsentBytesResetsTheStream) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    auto s = co_await session_with_fake_peer();
    co_await s.peer->send_open(1, server.target());
    auto ok = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::open_result, 1); });
    CO_ASSERT_TRUE(ok.has_value());
    co_await s.peer->send(encode_window(1, {10, 1 << 20}));  // nothing was sent on stream 1
    auto reset = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::reset, 1); });
    CO_ASSERT_TRUE(reset.has_value());
    EXPECT_EQ(std::get<ResetFrame>(reset->body).code, ResetCode::protocol_error);
    EXPECT_TRUE(co_await still_answers_pings(*s.peer, 99));
    s.session->stop();
    EXPECT_TRUE(co_await s.running->ended.wait());
  }());
}

TEST(SessionPeer, OpenBeyondMaxStreamsGetsTooManyStreams) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Server server(io.get_executor(), echo);
    SessionOptions options;
    options.max_streams = 2;
    auto s = co_await session_with_fake_peer(options);
    co_await s.peer->send_open(1, server.target());
    co_await s.peer->send_open(3, server.target());
    co_await s.peer->send_open(5, server.target());
    auto refused = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::open_result, 5); });
    CO_ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(std::get<OpenResultFrame>(refused->body).code, OpenCode::too_many_streams);
    EXPECT_EQ(s.dialer->dials, 2);
    // The two admitted streams carry data.
    co_await s.peer->send_data(3, "three");
    auto data = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::data, 3); });
    CO_ASSERT_TRUE(data.has_value());
    EXPECT_EQ(data->payload, "three");
    co_await s.peer->send_data(5, "ignored: stream 5 was refused");
    EXPECT_TRUE(co_await still_answers_pings(*s.peer, 5));
    s.session->stop();
    EXPECT_TRUE(co_await s.running->ended.wait());
  }());
}

TEST(SessionPeer, PingFloodIsAnsweredAndHarmless) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto s = co_await session_with_fake_peer();
    std::vector<std::byte> flood;
    for (int i = 0; i < 10000; ++i) {
      auto p = bytes_of(encode_ping(i, false));
      flood.insert(flood.end(), p.begin(), p.end());
    }
    co_await s.peer->send(flood);
    EXPECT_TRUE(co_await still_answers_pings(*s.peer, 424242));
    EXPECT_FALSE(s.session->stopped());
    s.session->stop();
    EXPECT_TRUE(co_await s.running->ended.wait());
  }());
}

TEST(SessionPeer, DataBeforeTheDialCompletesIsDeliveredAfterIt) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    std::string seen;
    Event done(io.get_executor());
    Server server(io.get_executor(), [&](tcp::socket c) -> asio::awaitable<void> {
      auto [ec, got] = co_await read_all(c);
      seen = got;
      done.set();
    });
    auto s = co_await session_with_fake_peer();
    // OPEN, DATA and FIN in one write: all arrive before the dial can finish.
    auto bytes = concat({bytes_of(*encode_open(1, server.target()))});
    co_await s.peer->send(bytes);
    co_await s.peer->send_data(1, "early ");
    co_await s.peer->send_data(1, "bytes", true);
    EXPECT_TRUE(co_await done.wait());
    EXPECT_EQ(seen, "early bytes");
    s.session->stop();
    EXPECT_TRUE(co_await s.running->ended.wait());
  }());
}

TEST(SessionPeer, SilentLinkTimesOut) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    SessionOptions options;
    options.dead_link_timeout = 60ms;
    // Taken before the session starts its pings, so the lower bound below cannot fail only
    // because this coroutine resumed late (it did, once, on a loaded machine).
    const auto started = Clock::now();
    auto s = co_await session_with_fake_peer(options);
    auto goaway = co_await s.peer->until_end();  // reads, but never answers
    CO_ASSERT_TRUE(goaway.has_value());
    EXPECT_EQ(goaway->code, GoAwayCode::ping_timeout);
    EXPECT_TRUE(co_await s.running->ended.wait());
    EXPECT_EQ(s.running->reason, make_error_code(Error::ping_timeout))
        << s.running->reason.message();
    EXPECT_GE(Clock::now() - started, 60ms);
    EXPECT_LT(Clock::now() - started, 5s);
  }());
}

// Any byte proves the link alive: a peer whose pongs are late (they wait behind bulk data on a
// slow link) or missing, but which keeps sending, is not cut off.
TEST(SessionPeer, LinkThatKeepsBringingBytesStaysUpWithoutPongs) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    SessionOptions options;
    // Long next to the 20 ms between the peer's pings, so a slow machine cannot make a gap.
    options.dead_link_timeout = slack(std::chrono::milliseconds(500));
    auto s = co_await session_with_fake_peer(options);
    asio::steady_timer tick(io);
    // Three timeouts' worth of pings from the peer, never a pong from it.
    const auto until = Clock::now() + 3 * options.dead_link_timeout;
    for (std::uint64_t i = 1000; Clock::now() < until; ++i) {
      co_await s.peer->send(encode_ping(i, false));
      tick.expires_after(20ms);
      co_await tick.async_wait(kTuple);
    }
    EXPECT_FALSE(s.session->stopped());
    EXPECT_TRUE(co_await still_answers_pings(*s.peer, 77));
    s.session->stop();
    EXPECT_TRUE(co_await s.running->ended.wait());
  }());
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMallinfoCountsHeap = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kMallinfoCountsHeap = false;
#else
constexpr bool kMallinfoCountsHeap = true;
#endif
#else
constexpr bool kMallinfoCountsHeap = true;
#endif

// Bytes buffered for a socket that does not take them must cost about what they weigh: the
// window bounds the bytes, and the memory must follow. Many small DATA frames for a blocked
// socket must not each pin a whole pool buffer.
TEST(SessionPeer, SmallFramesForABlockedSocketCostTheirSizeNotABufferEach) {
  if (!kMallinfoCountsHeap) GTEST_SKIP() << "mallinfo2 does not see the sanitizer's allocator";
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    Event release(io.get_executor());
    Server sink(io.get_executor(), [&](tcp::socket s) -> asio::awaitable<void> {
      co_await release.wait(30s);  // holds the connection and never reads
    });
    SessionOptions options;
    options.initial_window = 1 << 20;
    auto s = co_await session_with_fake_peer(options);
    s.dialer->send_buffer = 4096;
    const Target target = sink.target();
    co_await s.peer->send_open(1, target);
    auto ok = co_await s.peer->expect([](const Frame& f) { return is(f, FrameType::open_result, 1); });
    CO_ASSERT_TRUE(ok.has_value());
    CO_ASSERT_EQ(std::get<OpenResultFrame>(ok->body).code, OpenCode::ok);
    // Fill the kernel's buffers so that what follows has to wait in the session.
    for (int i = 0; i < 4; ++i) co_await s.peer->send_data(1, pattern(64 * 1024, i));
    EXPECT_TRUE(co_await still_answers_pings(*s.peer, 1));
    const auto before = mallinfo2().uordblks;
    std::vector<std::byte> small;
    constexpr int kFrames = 2000;
    for (int i = 0; i < kFrames; ++i) {
      auto h = encode_data_header(1, 1, false);
      small.insert(small.end(), h.begin(), h.end());
      small.push_back(std::byte{'x'});
    }
    co_await s.peer->send(small);
    EXPECT_TRUE(co_await still_answers_pings(*s.peer, 2));  // every frame above was decoded
    const auto grown = mallinfo2().uordblks - before;
    EXPECT_FALSE(s.session->stopped());
    EXPECT_LT(grown, 8u << 20) << kFrames << " one-byte DATA frames waiting for a blocked socket "
                               << "took " << (grown >> 20) << " MiB of heap";
    release.set();
    s.session->stop();
    EXPECT_TRUE(co_await s.running->ended.wait());
  }());
}

}  // namespace
}  // namespace lpk::tunnel
