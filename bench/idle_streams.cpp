// Opens many connections through a relay and holds them idle, so that the runner can read the
// relay's resident memory per open stream.
//
//   lpk_bench_idle_streams hold --listen 127.0.0.1:0
//       prints "listen PORT"; each connection: read 1 byte, write it back, then hold the
//       connection until the peer closes it or the process ends.
//   lpk_bench_idle_streams open --connect 127.0.0.1:PORT --count 10000 [--concurrency 200]
//       [--timeout 60] [--hold 600]
//       opens COUNT connections; on each sends 1 byte and waits for it to come back, which
//       proves the stream is open end to end. Then prints one JSON line
//       {"open":N,"errors":E,"seconds":S} and holds every connection until SIGTERM/SIGINT or
//       --hold seconds, then prints {"still_open":K} (connections the relay had not closed).

#include <csignal>
#include <memory>

#include "bench/bench_util.hpp"

namespace lpk::bench {
namespace {

// Holds one accepted connection: echo one byte, then park on a read until the peer closes.
asio::awaitable<void> hold_one(tcp::socket socket) {
  if (!co_await echo_one_byte(socket)) co_return;
  char byte = 0;
  co_await socket.async_read_some(asio::buffer(&byte, 1), kUseTuple);
}

int hold(const Flags& flags) {
  return run_server(flags, hold_one, std::chrono::milliseconds(100), "idle_streams hold");
}

struct OpenState {
  tcp::endpoint target;
  size_t count = 0;
  size_t next = 0;
  std::vector<std::unique_ptr<tcp::socket>> open;
  ErrorTally errors;
  std::vector<Slot> slots;
  bool done = false;
  size_t closed_early = 0;
};

// After the echo the connection is idle; this read only completes if the relay closes it.
asio::awaitable<void> watch_closed(OpenState& st, tcp::socket& socket) {
  char byte = 0;
  auto [ec, n] = co_await socket.async_read_some(asio::buffer(&byte, 1), kUseTuple);
  if (ec != asio::error::operation_aborted) ++st.closed_early;
}

asio::awaitable<boost::system::error_code> open_one(tcp::socket& socket, const tcp::endpoint& to) {
  auto [ec] = co_await socket.async_connect(to, kUseTuple);
  if (ec) co_return ec;
  socket.set_option(tcp::no_delay(true), ec);
  char byte = 'x';
  if (!ec)
    std::tie(ec, std::ignore) =
        co_await asio::async_write(socket, asio::buffer(&byte, 1), kUseTuple);
  if (!ec)
    std::tie(ec, std::ignore) =
        co_await asio::async_read(socket, asio::buffer(&byte, 1), kUseTuple);
  co_return ec;
}

asio::awaitable<void> opener(OpenState& st, Slot& slot, Clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  while (st.next < st.count) {
    ++st.next;
    auto socket = std::make_unique<tcp::socket>(ex);
    slot = Slot{socket.get(), deadline};
    auto ec = co_await open_one(*socket, st.target);
    slot = Slot{};
    if (ec) {
      st.errors.add(Clock::now() > deadline ? std::string("timed out") : ec.message());
      continue;
    }
    asio::co_spawn(ex, watch_closed(st, *socket), asio::detached);
    st.open.push_back(std::move(socket));
  }
}

void print_open(OpenState& st, Clock::time_point started) {
  double secs = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf("{\"open\":%zu,\"errors\":%llu,\"seconds\":%.3f}\n", st.open.size(),
              static_cast<unsigned long long>(st.errors.total()), secs);
  std::fflush(stdout);
  st.errors.print("idle_streams error");
}

int open_and_hold(const Flags& flags) {
  asio::io_context io;
  OpenState st;
  st.target = parse_endpoint(flags.str("--connect", ""));
  st.count = static_cast<size_t>(flags.num("--count", 10000));
  st.open.reserve(st.count);
  auto concurrency = std::max<size_t>(1, static_cast<size_t>(flags.num("--concurrency", 200)));
  auto started = Clock::now();
  auto deadline =
      started + std::chrono::milliseconds(static_cast<int64_t>(flags.num("--timeout", 60) * 1000));
  auto hold_for = std::chrono::milliseconds(static_cast<int64_t>(flags.num("--hold", 600) * 1000));
  st.slots.resize(concurrency);
  asio::co_spawn(io, watchdog(st.slots, st.done), asio::detached);

  asio::steady_timer hold_timer(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  auto finish = [&] {
    hold_timer.cancel();
    signals.cancel();
    for (auto& s : st.open) s->close();
  };
  auto active = std::make_shared<size_t>(concurrency);
  for (size_t i = 0; i < concurrency; ++i) {
    asio::co_spawn(io, opener(st, st.slots[i], deadline), [&, active](std::exception_ptr) {
      if (--*active != 0) return;
      st.done = true;
      print_open(st, started);
      hold_timer.expires_after(hold_for);
      hold_timer.async_wait([&](auto ec) {
        if (!ec) finish();
      });
      signals.async_wait([&](auto ec, int) {
        if (!ec) finish();
      });
    });
  }
  io.run();
  std::printf("{\"still_open\":%zu}\n", st.open.size() - st.closed_early);
  return st.errors.total() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace lpk::bench

int main(int argc, char** argv) {
  using namespace lpk::bench;
  std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "hold") return hold(Flags(argc, argv, 2, {"--listen"}));
    if (mode == "open")
      return open_and_hold(
          Flags(argc, argv, 2, {"--connect", "--count", "--concurrency", "--timeout", "--hold"}));
  } catch (const std::exception& e) {
    die(std::string("idle_streams: ") + e.what());
  }
  die("usage: lpk_bench_idle_streams hold --listen ADDR:PORT | open --connect ADDR:PORT "
      "[--count N] [--concurrency N] [--timeout SECS] [--hold SECS]");
}
