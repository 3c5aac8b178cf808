// New connections per second and connect-to-first-byte latency for a 1-byte request/response.
//
//   lpk_bench_conn_rate serve --listen 127.0.0.1:0
//       prints "listen PORT"; each connection: read 1 byte, write it back, close.
//   lpk_bench_conn_rate run --connect 127.0.0.1:PORT [--concurrency 1] [--duration 3]
//       [--count 1000000] [--warmup 0.3] [--timeout 5]
//       prints one JSON line: connections, errors, seconds, per_second, p50_us, p90_us, p99_us.
//
// The server closes first, so TIME_WAIT lands on the server's listening port and the client's
// ephemeral ports are never exhausted, however many connections a run opens.

#include <csignal>

#include "bench/bench_util.hpp"

namespace lpk::bench {
namespace {

asio::awaitable<void> serve_one(tcp::socket socket) { co_await echo_one_byte(socket); }

int serve(const Flags& flags) {
  return run_server(flags, serve_one, std::chrono::milliseconds(5));
}

struct RunState {
  tcp::endpoint target;
  Clock::time_point record_from;
  Clock::time_point stop_at;
  uint64_t budget = 0;
  std::chrono::nanoseconds timeout{};
  std::vector<uint32_t> latency_ns;
  uint64_t recorded = 0;
  Clock::time_point last_done;
  ErrorTally errors;
  std::vector<Slot> slots;
  bool done = false;
};

// One connection: connect, send a byte, time the byte coming back, then wait for the server's
// close so that the whole round trip (open, data, close) is inside the measured rate.
asio::awaitable<void> one_connection(RunState& st, Slot& slot) {
  auto start = Clock::now();
  tcp::socket socket(co_await asio::this_coro::executor);
  slot = Slot{&socket, start + st.timeout};
  auto [cec] = co_await socket.async_connect(st.target, kUseTuple);
  if (!cec) socket.set_option(tcp::no_delay(true), cec);
  char byte = 'x';
  boost::system::error_code ec = cec;
  if (!ec)
    std::tie(ec, std::ignore) =
        co_await asio::async_write(socket, asio::buffer(&byte, 1), kUseTuple);
  if (!ec)
    std::tie(ec, std::ignore) =
        co_await asio::async_read(socket, asio::buffer(&byte, 1), kUseTuple);
  auto first_byte = Clock::now();
  if (!ec) {
    auto [eof, n] = co_await socket.async_read_some(asio::buffer(&byte, 1), kUseTuple);
    if (eof != asio::error::eof) ec = eof ? eof : asio::error::message_size;
  }
  slot = Slot{};
  if (ec) {  // counted even in the warm-up: a relay that fails early must not look clean
    if (Clock::now() >= start + st.timeout)
      st.errors.add("no answer within the --timeout");
    else
      st.errors.add(ec);
    co_return;
  }
  if (start < st.record_from) co_return;
  st.latency_ns.push_back(static_cast<uint32_t>(std::min<int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(first_byte - start).count(),
      UINT32_MAX)));
  ++st.recorded;
  st.last_done = Clock::now();
}

asio::awaitable<void> worker(RunState& st, Slot& slot) {
  while (Clock::now() < st.stop_at && st.budget > 0) {
    if (Clock::now() >= st.record_from) --st.budget;
    co_await one_connection(st, slot);
  }
}

void start_workers(asio::io_context& io, RunState& st, size_t concurrency) {
  asio::co_spawn(io, watchdog(st.slots, st.done), asio::detached);
  auto active = std::make_shared<size_t>(concurrency);
  for (size_t i = 0; i < concurrency; ++i) {
    asio::co_spawn(io, worker(st, st.slots[i]), [&st, active](std::exception_ptr) {
      if (--*active == 0) st.done = true;  // lets the watchdog end, then io.run() returns
    });
  }
}

void print_report(RunState& st, size_t concurrency) {
  double secs = std::chrono::duration<double>(st.last_done - st.record_from).count();
  if (secs <= 0) secs = 1e-9;
  double p50 = percentile(st.latency_ns, 0.50) / 1000.0;
  double p90 = percentile(st.latency_ns, 0.90) / 1000.0;
  double p99 = percentile(st.latency_ns, 0.99) / 1000.0;
  std::printf(
      "{\"connections\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"per_second\":%.1f,"
      "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"concurrency\":%zu}\n",
      static_cast<unsigned long long>(st.recorded),
      static_cast<unsigned long long>(st.errors.total()), secs, st.recorded / secs, p50, p90, p99,
      concurrency);
  std::fflush(stdout);
  st.errors.print("conn_rate error");
}

int run(const Flags& flags) {
  asio::io_context io;
  RunState st;
  auto concurrency = static_cast<size_t>(flags.num("--concurrency", 1));
  if (concurrency == 0) die("--concurrency must be at least 1");
  st.target = parse_endpoint(flags.str("--connect", ""));
  st.budget = static_cast<uint64_t>(flags.num("--count", 1e6));
  st.timeout = std::chrono::milliseconds(static_cast<int64_t>(flags.num("--timeout", 5) * 1000));
  auto now = Clock::now();
  st.record_from =
      now + std::chrono::milliseconds(static_cast<int64_t>(flags.num("--warmup", 0.3) * 1000));
  st.stop_at = st.record_from +
               std::chrono::milliseconds(static_cast<int64_t>(flags.num("--duration", 3) * 1000));
  st.last_done = st.record_from;
  st.latency_ns.reserve(1 << 20);
  st.slots.resize(concurrency);
  start_workers(io, st, concurrency);
  io.run();
  print_report(st, concurrency);
  return st.recorded > 0 ? 0 : 1;
}

}  // namespace
}  // namespace lpk::bench

int main(int argc, char** argv) {
  using namespace lpk::bench;
  std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "serve") return serve(Flags(argc, argv, 2, {"--listen"}));
    if (mode == "run")
      return run(
          Flags(argc, argv, 2,
                {"--connect", "--concurrency", "--duration", "--count", "--warmup", "--timeout"}));
  } catch (const std::exception& e) {
    die(std::string("conn_rate: ") + e.what());
  }
  die("usage: lpk_bench_conn_rate serve --listen ADDR:PORT | run --connect ADDR:PORT "
      "[--concurrency N] [--duration SECS] [--count N] [--warmup SECS] [--timeout SECS]");
}
