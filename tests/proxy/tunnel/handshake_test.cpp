#include "proxy/tunnel/handshake.hpp"

#include <gtest/gtest.h>

#include "proxy/tunnel/codec.hpp"
#include "proxy/tunnel/error.hpp"
#include "proxy/tunnel/session.hpp"
#include "tests/proxy/tunnel/test_util.hpp"

namespace lpk::tunnel {
namespace {

using namespace test;
using boost::system::result;

Hello proxy_hello() {
  Hello h;
  h.session_id = random_session_id();
  h.max_frame_payload = 32 * 1024;
  h.max_streams = 100;
  h.initial_window = 128 * 1024;
  return h;
}

Hello agent_hello() {
  Hello h;
  h.max_frame_payload = 16 * 1024;
  h.max_streams = 200;
  h.initial_window = 512 * 1024;
  return h;
}

std::vector<std::byte> drain(std::deque<std::byte>& q) {
  std::vector<std::byte> out(q.begin(), q.end());
  q.clear();
  return out;
}

// Decodes the frames in `bytes`; fails the test on anything that is not a whole frame.
std::vector<DecodeStep> frames_in(const std::vector<std::byte>& bytes) {
  std::vector<DecodeStep> out;
  std::span<const std::byte> rest(bytes);
  while (!rest.empty()) {
    auto step = decode_frame(rest, kMaxFramePayloadLimit);
    EXPECT_EQ(step.status, DecodeStep::Status::frame);
    if (step.status != DecodeStep::Status::frame) break;
    rest = rest.subspan(step.consumed);
    out.push_back(std::move(step));
  }
  return out;
}

std::optional<GoAwayFrame> only_go_away(const std::vector<std::byte>& bytes) {
  auto frames = frames_in(bytes);
  EXPECT_EQ(frames.size(), 1u);
  if (frames.size() != 1 || !std::holds_alternative<GoAwayFrame>(frames[0].body)) return {};
  return std::get<GoAwayFrame>(frames[0].body);
}

// Runs `a` as its own coroutine thread. (Awaited directly, a handshake that completes without
// ever suspending left the awaiting test coroutine unresumed in this GCC 12 build.)
template <typename T>
asio::awaitable<T> spawned(asio::awaitable<T> a) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::co_spawn(ex, std::move(a), asio::use_awaitable);
}

// Puts bytes on `writer`'s side of the link directly, without a coroutine, as if written.
void feed(MemoryLink& writer, asio::const_buffer bytes) {
  auto* p = static_cast<const std::byte*>(bytes.data());
  writer.unread_by_peer().insert(writer.unread_by_peer().end(), p, p + bytes.size());
}

struct Both {
  result<HandshakeResult> proxy = Error::session_closed;
  result<HandshakeResult> agent = Error::session_closed;
};

// Runs both ends over an in-memory link; the proxy's link is returned for inspection.
asio::awaitable<Both> exchange(MemoryLink& p, MemoryLink& a, std::string proxy_secret,
                               std::string agent_secret) {
  auto [pr, ar] = co_await (handshake_as_proxy(p, proxy_hello(), proxy_secret) &&
                            handshake_as_agent(a, agent_hello(), agent_secret));
  co_return Both{std::move(pr), std::move(ar)};
}

TEST(Handshake, SucceedsWithoutSecret) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto [p, a] = make_memory_links(io.get_executor());
    auto r = co_await exchange(*p, *a, "", "");
    CO_ASSERT_TRUE(r.proxy) << r.proxy.error().message();
    CO_ASSERT_TRUE(r.agent) << r.agent.error().message();
    EXPECT_EQ(r.proxy->peer.role, Role::agent);
    EXPECT_EQ(r.agent->peer.role, Role::proxy);
    EXPECT_EQ(r.agent->local.session_id, r.proxy->local.session_id) << "agent takes the id";
    EXPECT_EQ(r.proxy->peer.session_id, r.proxy->local.session_id);
    EXPECT_EQ(r.proxy->peer.max_streams, 200u);
    EXPECT_EQ(r.proxy->peer.initial_window, 512u * 1024);
    EXPECT_EQ(r.agent->peer.max_frame_payload, 32u * 1024);
    EXPECT_FALSE(r.proxy->peer.has_auth);
    EXPECT_FALSE(r.agent->peer.has_auth);
    EXPECT_TRUE(p->unread_by_peer().empty());
    EXPECT_TRUE(a->unread_by_peer().empty()) << "no GOAWAY after a good handshake";
  }());
}

TEST(Handshake, SucceedsWithTheSameSecret) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto [p, a] = make_memory_links(io.get_executor());
    auto r = co_await exchange(*p, *a, "s3cret", "s3cret");
    CO_ASSERT_TRUE(r.proxy) << r.proxy.error().message();
    CO_ASSERT_TRUE(r.agent) << r.agent.error().message();
    EXPECT_TRUE(r.proxy->peer.has_auth);
    EXPECT_TRUE(r.agent->peer.has_auth);
    EXPECT_TRUE(verify_auth(r.agent->peer, "s3cret"));
    EXPECT_TRUE(verify_auth(r.proxy->peer, "s3cret"));
    EXPECT_FALSE(verify_auth(r.proxy->peer, "other"));
    EXPECT_TRUE(a->unread_by_peer().empty());
  }());
}

TEST(Handshake, DifferentSecretsFailOnBothEnds) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto [p, a] = make_memory_links(io.get_executor());
    auto r = co_await exchange(*p, *a, "proxy-secret", "agent-secret");
    CO_ASSERT_FALSE(r.agent);
    EXPECT_EQ(r.agent.error(), make_error_code(Error::auth_failed));
    CO_ASSERT_FALSE(r.proxy);
    EXPECT_EQ(r.proxy.error(), make_error_code(Error::auth_failed));
    // The agent explained itself after its hello (the proxy may have read it already).
    auto rest = drain(a->unread_by_peer());
    if (!rest.empty()) {
      auto goaway = only_go_away(rest);
      CO_ASSERT_TRUE(goaway);
      EXPECT_EQ(goaway->code, GoAwayCode::auth_failed);
      EXPECT_NE(goaway->reason.find("secret"), std::string::npos) << goaway->reason;
    }
  }());
}

// A proxy without the agent's secret (or with one the agent does not expect) learns why it was
// refused: either its handshake fails with auth_failed (the agent marks its hello as refused),
// or its session starts and then ends on the agent's GOAWAY (auth_failed).
asio::awaitable<void> proxy_session_meets_refusing_agent(asio::io_context& io,
                                                         std::string proxy_secret,
                                                         std::string agent_secret) {
  auto [p, a] = make_memory_links(io.get_executor());
  SessionOptions options;
  options.secret = proxy_secret;
  auto [established, agent] =
      co_await (Session::establish(std::move(p), options, nullptr) &&
                handshake_as_agent(*a, agent_hello(), agent_secret));
  CO_ASSERT_FALSE(agent);
  EXPECT_EQ(agent.error(), make_error_code(Error::auth_failed));
  a->close();  // the agent hangs up after its GOAWAY
  if (!established) {
    EXPECT_EQ(established.error(), make_error_code(Error::auth_failed))
        << established.error().message();
    co_return;
  }
  auto session = *established;
  auto why = co_await session->run();
  EXPECT_EQ(why, make_error_code(Error::peer_went_away)) << why.message();
  CO_ASSERT_TRUE(session->go_away_code());
  EXPECT_EQ(*session->go_away_code(), GoAwayCode::auth_failed);
  EXPECT_NE(session->go_away_reason().find("authentication failed"), std::string::npos)
      << session->go_away_reason();
  EXPECT_TRUE(session->stopped());
}

TEST(Handshake, ProxyWithoutSecretSeesTheAgentsGoAway) {
  asio::io_context io;
  run_task(io, proxy_session_meets_refusing_agent(io, "", "agent-secret"));
}

TEST(Handshake, ProxyWithASecretTheAgentLacksSeesTheAgentsGoAway) {
  asio::io_context io;
  run_task(io, proxy_session_meets_refusing_agent(io, "proxy-secret", ""));
}

TEST(Handshake, AgentRefusesAnotherVersionAndSaysSo) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto [p, a] = make_memory_links(io.get_executor());
    auto hello = encode_hello(proxy_hello());
    hello[4] = std::byte{2};
    asio::const_buffer buf(hello.data(), hello.size());
    feed(*p, buf);
    auto r = co_await spawned(handshake_as_agent(*a, agent_hello(), ""));
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(Error::bad_version));
    auto out = drain(a->unread_by_peer());
    CO_ASSERT_GE(out.size(), kHelloSize);
    auto agent = decode_hello(std::span<const std::byte, kHelloSize>(out.data(), kHelloSize));
    CO_ASSERT_TRUE(agent) << "the agent still answers with its own hello, so the proxy can read on";
    auto goaway = only_go_away({out.begin() + kHelloSize, out.end()});
    CO_ASSERT_TRUE(goaway);
    EXPECT_EQ(goaway->code, GoAwayCode::version_mismatch);
    EXPECT_NE(goaway->reason.find("version 1"), std::string::npos) << goaway->reason;
  }());
}

// Feeds the proxy's handshake a prepared answer.
asio::awaitable<result<HandshakeResult>> proxy_reads(asio::io_context& io,
                                                     std::vector<std::byte> answer,
                                                     bool close_after = true) {
  auto [p, a] = make_memory_links(io.get_executor());
  asio::const_buffer buf(answer.data(), answer.size());
  feed(*a, buf);
  if (close_after) a->close();
  co_return co_await spawned(handshake_as_proxy(*p, proxy_hello(), ""));
}

std::vector<std::byte> agent_answer(std::function<void(std::array<std::byte, kHelloSize>&)> edit,
                                    const SessionId& id) {
  Hello h = agent_hello();
  h.role = Role::agent;
  h.session_id = id;
  auto wire = encode_hello(h);
  edit(wire);
  return {wire.begin(), wire.end()};
}

TEST(Handshake, ProxyRejectsBadAgentHellos) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    // Another version.
    auto r = co_await proxy_reads(io, agent_answer([](auto& w) { w[4] = std::byte{9}; }, {}));
    EXPECT_EQ(r.error(), make_error_code(Error::bad_version));
    // Garbage.
    r = co_await proxy_reads(io, std::vector<std::byte>(kHelloSize, std::byte{'G'}));
    EXPECT_EQ(r.error(), make_error_code(Error::bad_magic));
    // Another proxy answering.
    r = co_await proxy_reads(io, agent_answer([](auto& w) { w[5] = std::byte{1}; }, {}));
    EXPECT_EQ(r.error(), make_error_code(Error::bad_role));
    // An agent answering for another session (the ids differ: proxy_hello() is random).
    r = co_await proxy_reads(io, agent_answer([](auto&) {}, random_session_id()));
    EXPECT_EQ(r.error(), make_error_code(Error::bad_hello));
    // A hello cut short by the end of the stream.
    r = co_await proxy_reads(io, std::vector<std::byte>(kHelloSize - 1, std::byte{'L'}));
    EXPECT_EQ(r.error(), make_error_code(Error::truncated));
    r = co_await proxy_reads(io, {});
    EXPECT_EQ(r.error(), make_error_code(Error::truncated));
  }());
}

TEST(Handshake, AProxyWithASecretRefusesAnAgentThatProvesNothing) {
  // Something else listening on the agent's port (a sidecar that got there first) answers as
  // an agent without authentication: it must not get the session's streams.
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto [p, a] = make_memory_links(io.get_executor());
    auto hello = proxy_hello();
    auto answer = agent_answer([](auto&) {}, hello.session_id);
    feed(*a, asio::const_buffer(answer.data(), answer.size()));
    auto r = co_await spawned(handshake_as_proxy(*p, hello, "the session's secret"));
    EXPECT_FALSE(r) << "the proxy took a tunnel from an agent that proved nothing";
    if (!r) {
      EXPECT_EQ(r.error(), make_error_code(Error::auth_failed));
    }
  }());
}

TEST(Handshake, AgentDropsGarbageWithoutAnswering) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto [p, a] = make_memory_links(io.get_executor());
    auto garbage = to_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(100, 'z'));
    asio::const_buffer buf(garbage.data(), garbage.size());
    feed(*p, buf);
    auto r = co_await spawned(handshake_as_agent(*a, agent_hello(), ""));
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(Error::bad_magic));
    EXPECT_TRUE(a->unread_by_peer().empty()) << "nothing is sent to a stranger";
  }());
}

TEST(Handshake, AgentRefusesAnotherAgentAndTruncatedHellos) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    {
      auto [p, a] = make_memory_links(io.get_executor());
      auto h = proxy_hello();
      h.role = Role::agent;
      auto wire = encode_hello(h);
      asio::const_buffer buf(wire.data(), wire.size());
      feed(*p, buf);
      auto r = co_await spawned(handshake_as_agent(*a, agent_hello(), ""));
      EXPECT_EQ(r.error(), make_error_code(Error::bad_role));
      auto out = drain(a->unread_by_peer());
      CO_ASSERT_GT(out.size(), kHelloSize);
      auto goaway = only_go_away({out.begin() + kHelloSize, out.end()});
      CO_ASSERT_TRUE(goaway);
      EXPECT_EQ(goaway->code, GoAwayCode::protocol_error);
    }
    {
      auto [p, a] = make_memory_links(io.get_executor());
      auto wire = encode_hello(proxy_hello());
      asio::const_buffer buf(wire.data(), 30);
      feed(*p, buf);
      p->close();
      auto r = co_await spawned(handshake_as_agent(*a, agent_hello(), ""));
      EXPECT_EQ(r.error(), make_error_code(Error::truncated));
    }
  }());
}

TEST(Handshake, AuthDependsOnSecretRoleAndSession) {
  auto id = random_session_id();
  auto other = random_session_id();
  EXPECT_NE(id, other);
  auto mac = compute_auth("k", Role::proxy, id);
  EXPECT_NE(mac, (std::array<std::byte, kAuthSize>{}));
  EXPECT_EQ(mac, compute_auth("k", Role::proxy, id));
  EXPECT_NE(mac, compute_auth("k", Role::agent, id));
  EXPECT_NE(mac, compute_auth("k", Role::proxy, other));
  EXPECT_NE(mac, compute_auth("K", Role::proxy, id));
  EXPECT_EQ(compute_auth("", Role::proxy, id), (std::array<std::byte, kAuthSize>{}));
  Hello h;
  h.role = Role::proxy;
  h.session_id = id;
  h.has_auth = true;
  h.auth = mac;
  EXPECT_TRUE(verify_auth(h, "k"));
  EXPECT_FALSE(verify_auth(h, ""));
  h.auth[31] ^= std::byte{1};
  EXPECT_FALSE(verify_auth(h, "k"));
  h.has_auth = false;
  EXPECT_TRUE(verify_auth(h, ""));
  EXPECT_FALSE(verify_auth(h, "k"));
}

// The establish deadline over real sockets: a peer that says nothing.
void expect_timeout(Role role) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto [silent, mine] = co_await socket_pair();
    SessionOptions options;
    options.role = role;
    options.handshake_timeout = 100ms;
    const auto started = Clock::now();
    auto r = co_await Session::establish(std::make_unique<TcpLink>(std::move(mine)), options,
                                         nullptr);
    const auto took = Clock::now() - started;
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(asio::error::timed_out)) << r.error().message();
    EXPECT_GE(took, 90ms);
    EXPECT_LT(took, 5s);
    // The link was closed: the silent peer sees the end (after the proxy's hello, if any).
    auto [ec, got] = co_await read_all(silent);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
    EXPECT_EQ(got.size(), role == Role::proxy ? kHelloSize : 0u);
  }());
}

TEST(Handshake, ProxyTimesOutOnASilentPeer) { expect_timeout(Role::proxy); }
TEST(Handshake, AgentTimesOutOnASilentPeer) { expect_timeout(Role::agent); }

TEST(Handshake, EstablishOverTcpWithSecret) {
  asio::io_context io;
  run_task(io, [&]() -> asio::awaitable<void> {
    auto [x, y] = co_await socket_pair();
    SessionOptions po, ao;
    po.secret = ao.secret = "shared";
    ao.role = Role::agent;
    const auto id = random_session_id();
    auto [p, a] = co_await (
        Session::establish(std::make_unique<TcpLink>(std::move(x)), po, nullptr, id) &&
        Session::establish(std::make_unique<TcpLink>(std::move(y)), ao, nullptr));
    CO_ASSERT_TRUE(p) << p.error().message();
    CO_ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ((*p)->id(), id);
    EXPECT_EQ((*a)->id(), id);
    EXPECT_EQ((*p)->id_text().size(), 32u);
    EXPECT_EQ((*p)->id_text(), (*a)->id_text());
    (*p)->stop();
    (*a)->stop();
  }());
}

}  // namespace
}  // namespace lpk::tunnel
