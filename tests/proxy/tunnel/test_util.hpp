#pragma once
// Helpers for the tunnel tests: running a coroutine on the test's own io_context with a
// deadline, events to wait on, loopback socket pairs, small local servers, a dialer that
// connects to them, and an in-memory Link pair.

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/tunnel/codec.hpp"
#include "proxy/tunnel/dial.hpp"
#include "proxy/tunnel/link.hpp"
#include "proxy/tunnel/session.hpp"

// Fatal assertions for coroutine bodies: gtest's ASSERT_* expand to `return`, which a
// coroutine cannot use; these end the coroutine with co_return instead.
#define LPK_CO_FATAL_(message) \
  co_return GTEST_MESSAGE_(message, ::testing::TestPartResult::kFatalFailure)
#define CO_ASSERT_TRUE(c) GTEST_TEST_BOOLEAN_(c, #c, false, true, LPK_CO_FATAL_)
#define CO_ASSERT_FALSE(c) GTEST_TEST_BOOLEAN_(!(c), #c, true, false, LPK_CO_FATAL_)
#define CO_ASSERT_EQ(a, b) \
  GTEST_PRED_FORMAT2_(::testing::internal::EqHelper::Compare, a, b, LPK_CO_FATAL_)
#define CO_ASSERT_GE(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperGE, a, b, LPK_CO_FATAL_)
#define CO_ASSERT_GT(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperGT, a, b, LPK_CO_FATAL_)

namespace lpk::tunnel::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

inline constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

inline std::vector<std::byte> to_bytes(std::string_view s) {
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = std::byte(s[i]);
  return out;
}

inline std::string to_text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// The bytes of an encoded frame, as they go on the wire.
inline std::vector<std::byte> bytes_of(const EncodedFrame& f) {
  return {f.view().begin(), f.view().end()};
}

/// A deterministic, non-repeating-looking payload of `n` bytes.
inline std::string pattern(std::size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 12345;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = char(x >> 24);
  }
  return s;
}

/// Runs `task` on `io` until it completes or `limit` passes. Returns false on timeout (the
/// test fails); an exception thrown by the task fails the test too.
inline bool run_task(asio::io_context& io, asio::awaitable<void> task,
                     std::chrono::milliseconds limit = 20s) {
  bool done = false;
  std::exception_ptr error;
  // io.stop() right as the task returns, before any other handler can touch its dead locals.
  auto stop_after = [](asio::io_context& io, asio::awaitable<void> t) -> asio::awaitable<void> {
    co_await std::move(t);
    io.stop();
  };
  asio::co_spawn(io, stop_after(io, std::move(task)), [&](std::exception_ptr e) {
    done = true;
    error = e;
    io.stop();
  });
  io.run_for(limit);
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "test coroutine threw: " << e.what();
    }
  }
  EXPECT_TRUE(done) << "test did not finish within " << limit.count() << " ms";
  return done && !error;
}

/// A one-shot event that coroutines can wait for, with a deadline.
class Event {
 public:
  explicit Event(asio::any_io_executor ex) : timer_(ex, Clock::time_point::max()) {}
  void set() {
    set_ = true;
    timer_.cancel();
  }
  bool is_set() const { return set_; }
  void reset() { set_ = false; }
  asio::awaitable<bool> wait(std::chrono::milliseconds limit = 10s) {
    asio::steady_timer deadline(co_await asio::this_coro::executor, limit);
    while (!set_) {
      auto r = co_await (timer_.async_wait(kTuple) || deadline.async_wait(kTuple));
      if (r.index() == 1) break;
    }
    co_return set_;
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

/// Waits until `done()` holds, checking every millisecond, for state that has no event of
/// its own (the smoothed RTT). Returns false at the deadline.
inline asio::awaitable<bool> eventually(std::function<bool()> done,
                                        std::chrono::milliseconds limit = 5s) {
  auto ex = co_await asio::this_coro::executor;
  const auto until = Clock::now() + limit;
  asio::steady_timer tick(ex);
  while (!done()) {
    if (Clock::now() > until) co_return false;
    tick.expires_after(1ms);
    co_await tick.async_wait(kTuple);
  }
  co_return true;
}

/// Two connected loopback TCP sockets: {connecting side, accepted side}.
inline asio::awaitable<std::pair<tcp::socket, tcp::socket>> socket_pair() {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(ex);
  tcp::socket server = co_await (acceptor.async_accept(asio::use_awaitable) &&
                                 client.async_connect(acceptor.local_endpoint(),
                                                      asio::use_awaitable));
  co_return std::pair<tcp::socket, tcp::socket>{std::move(client), std::move(server)};
}

inline asio::awaitable<error_code> write_text(tcp::socket& s, std::string_view data) {
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(data), kTuple);
  co_return ec;
}

/// Reads until the peer ends the stream; returns what arrived and how it ended (eof when
/// closed cleanly).
inline asio::awaitable<std::pair<error_code, std::string>> read_all(tcp::socket& s) {
  std::string out;
  auto [ec, n] = co_await asio::async_read(s, asio::dynamic_buffer(out), kTuple);
  co_return std::pair{ec, std::move(out)};
}

inline asio::awaitable<std::pair<error_code, std::string>> read_exactly(tcp::socket& s,
                                                                        std::size_t n) {
  std::string out(n, '\0');
  auto [ec, got] = co_await asio::async_read(s, asio::buffer(out), kTuple);
  out.resize(got);
  co_return std::pair{ec, std::move(out)};
}

/// A loopback port where connections are refused: bound without listening and held for the
/// object's life, so no other process can take it meanwhile (as it could a port merely bound
/// and released).
class ClosedPort {
 public:
  explicit ClosedPort(asio::io_context& io) : socket_(io) {
    socket_.open(tcp::v4());
    socket_.bind({asio::ip::make_address("127.0.0.1"), 0});
  }
  std::uint16_t port() const { return socket_.local_endpoint().port(); }
  Target target() const { return {Target::Kind::ipv4, "127.0.0.1", port()}; }

 private:
  tcp::socket socket_;
};

/// A loopback TCP server on an ephemeral port that runs `handler` for every connection.
class Server {
 public:
  using Handler = std::function<asio::awaitable<void>(tcp::socket)>;
  Server(asio::any_io_executor ex, Handler handler)
      : acceptor_(std::make_shared<tcp::acceptor>(
            ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0))),
        handler_(std::make_shared<Handler>(std::move(handler))) {
    asio::co_spawn(ex, accept_loop(acceptor_, handler_, accepted_), asio::detached);
  }
  ~Server() { stop(); }
  std::uint16_t port() const { return acceptor_->local_endpoint().port(); }
  Target target() const { return Target{Target::Kind::ipv4, "127.0.0.1", port()}; }
  int accepted() const { return *accepted_; }
  void stop() {
    error_code ec;
    acceptor_->close(ec);
  }

 private:
  static asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                           std::shared_ptr<Handler> handler,
                                           std::shared_ptr<int> accepted) {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(kTuple);
      if (ec) co_return;
      ++*accepted;
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(acceptor->get_executor(), serve(handler, std::move(socket)), asio::detached);
    }
  }
  // Holds the handler (a lambda whose captures the coroutine reads) while it runs.
  static asio::awaitable<void> serve(std::shared_ptr<Handler> handler, tcp::socket socket) {
    co_await (*handler)(std::move(socket));
  }
  std::shared_ptr<tcp::acceptor> acceptor_;
  std::shared_ptr<Handler> handler_;
  std::shared_ptr<int> accepted_ = std::make_shared<int>(0);
};

/// Echoes every byte; half-closes its side after reading end of stream.
inline asio::awaitable<void> echo(tcp::socket s) {
  std::array<char, 16384> buf;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kTuple);
    if (ec) break;
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(buf.data(), n), kTuple);
    if (wec) co_return;
  }
  error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
  // Keep the socket until the other side closes, so nothing is reset.
  co_await s.async_wait(tcp::socket::wait_read, kTuple);
}

/// The stream dialer under test's control: connects to 127.0.0.1:<target port> like the
/// agent, except for ports told to hang (until release()) or to be refused outright.
class TestDialer final : public Dialer {
 public:
  explicit TestDialer(asio::any_io_executor ex) : release_(ex) {}
  asio::awaitable<DialResult> dial(const Target& target) override {
    ++dials;
    targets.push_back(target);
    if (target.kind == Target::Kind::inbound) {
      std::vector<tcp::endpoint> local{{asio::ip::make_address("127.0.0.1"), target.port}};
      co_return co_await dial_tcp(local, 2s);
    }
    if (hang_ports.count(target.port)) {
      co_await release_.wait(30s);
      co_return DialResult{OpenCode::refused, "released", std::nullopt};
    }
    auto r = co_await resolve_and_dial(target, 2s);
    if (r.socket && send_buffer) {
      r.socket->set_option(asio::socket_base::send_buffer_size(*send_buffer));
    }
    co_return r;
  }
  void release() { release_.set(); }

  int dials = 0;
  std::vector<Target> targets;
  std::set<std::uint16_t> hang_ports;
  std::optional<int> send_buffer;  // SO_SNDBUF for dialed sockets, to make them block early

 private:
  Event release_;
};


/// One direction of an in-memory link: bytes written by one end, read by the other.
struct Pipe {
  explicit Pipe(asio::any_io_executor ex) : wake(ex, Clock::time_point::max()) {}
  std::deque<std::byte> bytes;
  bool closed = false;
  asio::steady_timer wake;
};

/// A Link over two Pipes, for protocol code without sockets. make_memory_links() returns
/// two connected ends.
class MemoryLink final : public Link {
 public:
  MemoryLink(asio::any_io_executor ex, std::shared_ptr<Pipe> in, std::shared_ptr<Pipe> out)
      : ex_(std::move(ex)), in_(std::move(in)), out_(std::move(out)) {}
  ~MemoryLink() override { close(); }

  // One co_return per coroutine, of a named value: GCC 12 has miscompiled early co_returns of
  // temporaries here (the awaiting coroutine was never resumed).
  asio::awaitable<Result> read_some(asio::mutable_buffer buffer) override {
    Result result(asio::error::operation_aborted, 0);
    while (!closed_) {
      if (!in_->bytes.empty()) {
        std::size_t n = std::min(buffer.size(), in_->bytes.size());
        auto* p = static_cast<std::byte*>(buffer.data());
        std::copy_n(in_->bytes.begin(), n, p);
        in_->bytes.erase(in_->bytes.begin(), in_->bytes.begin() + std::ptrdiff_t(n));
        result = Result(error_code{}, n);
        break;
      }
      if (in_->closed) {
        result = Result(asio::error::eof, 0);
        break;
      }
      in_->wake.expires_at(Clock::time_point::max());
      co_await in_->wake.async_wait(kTuple);
      auto cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none) break;
    }
    co_return result;
  }
  asio::awaitable<Result> write(std::span<const asio::const_buffer> buffers) override {
    Result result(asio::error::broken_pipe, 0);
    if (!closed_) {
      std::size_t total = 0;
      for (const auto& b : buffers) {
        auto* p = static_cast<const std::byte*>(b.data());
        out_->bytes.insert(out_->bytes.end(), p, p + b.size());
        total += b.size();
      }
      out_->wake.cancel();
      result = Result(error_code{}, total);
    }
    co_return result;
  }
  /// The peer reads what was written and then end of stream; what it writes afterwards is
  /// dropped, as TCP would before the reset arrives.
  void close() override {
    closed_ = true;
    out_->closed = true;
    out_->wake.cancel();
    in_->wake.cancel();
  }
  std::string describe() const override { return "memory"; }
  asio::any_io_executor executor() override { return ex_; }
  /// Bytes written to this end that the other end has not read yet.
  std::deque<std::byte>& unread_by_peer() { return out_->bytes; }

 private:
  asio::any_io_executor ex_;
  std::shared_ptr<Pipe> in_;
  std::shared_ptr<Pipe> out_;
  bool closed_ = false;
};

inline std::pair<std::unique_ptr<MemoryLink>, std::unique_ptr<MemoryLink>> make_memory_links(
    asio::any_io_executor ex) {
  auto a_to_b = std::make_shared<Pipe>(ex);
  auto b_to_a = std::make_shared<Pipe>(ex);
  return {std::make_unique<MemoryLink>(ex, b_to_a, a_to_b),
          std::make_unique<MemoryLink>(ex, a_to_b, b_to_a)};
}

/// A session's run() in the background, with how it ended.
struct Running {
  Running(asio::any_io_executor ex, std::shared_ptr<Session> s)
      : session(std::move(s)), ended(std::move(ex)) {}
  std::shared_ptr<Session> session;
  Event ended;
  error_code reason;
};

inline std::shared_ptr<Running> start_running(asio::any_io_executor ex,
                                              std::shared_ptr<Session> session) {
  auto r = std::make_shared<Running>(ex, session);
  asio::co_spawn(ex, session->run(), [r](std::exception_ptr, error_code ec) {
    r->reason = ec;
    r->ended.set();
  });
  return r;
}

/// An agent end in the test: accepts tunnel links, runs agent Sessions that dial through a
/// TestDialer.
class TestAgent {
 public:
  TestAgent(asio::any_io_executor ex, SessionOptions options = {})
      : acceptor_(std::make_shared<tcp::acceptor>(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0))),
        state_(std::make_shared<State>(ex)) {
    options.role = Role::agent;
    asio::co_spawn(ex, accept_loop(acceptor_, state_, options), asio::detached);
  }
  ~TestAgent() { stop(); }
  Target target() const {
    return {Target::Kind::ipv4, "127.0.0.1", acceptor_->local_endpoint().port()};
  }
  std::vector<std::shared_ptr<Session>>& sessions() { return state_->sessions; }
  int refused() const { return state_->refused; }
  void stop() {
    error_code ec;
    acceptor_->close(ec);
    for (auto& s : state_->sessions) s->stop();
  }

 private:
  struct State {
    explicit State(asio::any_io_executor ex) : dialer(std::make_shared<TestDialer>(ex)) {}
    std::shared_ptr<TestDialer> dialer;
    std::vector<std::shared_ptr<Session>> sessions;
    int refused = 0;
  };
  static asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                           std::shared_ptr<State> state, SessionOptions options) {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(kTuple);
      if (ec) co_return;
      auto s = co_await Session::establish(std::make_unique<TcpLink>(std::move(socket)),
                                           options, state->dialer);
      if (!s) {
        ++state->refused;
        continue;
      }
      state->sessions.push_back(*s);
      asio::co_spawn(acceptor->get_executor(), (*s)->run(), asio::detached);
    }
  }
  std::shared_ptr<tcp::acceptor> acceptor_;
  std::shared_ptr<State> state_;
};

/// Two real Sessions over a loopback TCP link, both running: the proxy side opens streams for
/// local client sockets, the agent side dials through a TestDialer.
struct Tunnel {
  std::shared_ptr<Session> proxy;
  std::shared_ptr<Session> agent;
  std::shared_ptr<Running> proxy_run;
  std::shared_ptr<Running> agent_run;
  std::shared_ptr<TestDialer> dialer;        // the agent's
  std::shared_ptr<TestDialer> proxy_dialer;  // for inbound streams

  /// A client connection whose stream the proxy carries to `target`.
  asio::awaitable<tcp::socket> connect(Target target) {
    auto [client, local] = co_await socket_pair();
    proxy->open_stream(std::move(local), std::move(target));
    co_return std::move(client);
  }
  asio::awaitable<void> close() {
    proxy->stop();
    EXPECT_TRUE(co_await proxy_run->ended.wait());
    EXPECT_TRUE(co_await agent_run->ended.wait());
  }
};

// (No default arguments: GCC 12 destroys the temporaries of a default argument to a coroutine
// twice. Callers pass named options.)
inline asio::awaitable<Tunnel> make_tunnel(SessionOptions po, SessionOptions ao) {
  auto ex = co_await asio::this_coro::executor;
  auto [x, y] = co_await socket_pair();
  po.role = Role::proxy;
  ao.role = Role::agent;
  Tunnel t;
  t.dialer = std::make_shared<TestDialer>(ex);
  t.proxy_dialer = std::make_shared<TestDialer>(ex);
  auto [p, a] = co_await (
      Session::establish(std::make_unique<TcpLink>(std::move(x)), po, t.proxy_dialer) &&
      Session::establish(std::make_unique<TcpLink>(std::move(y)), ao, t.dialer));
  if (!p || !a) throw std::runtime_error("handshake failed");
  t.proxy = *p;
  t.agent = *a;
  t.proxy_run = start_running(ex, t.proxy);
  t.agent_run = start_running(ex, t.agent);
  co_return t;
}

inline asio::awaitable<Tunnel> make_tunnel() {
  SessionOptions po, ao;
  co_return co_await make_tunnel(po, ao);
}

}  // namespace lpk::tunnel::test
