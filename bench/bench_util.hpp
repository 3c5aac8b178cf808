#pragma once
// Small helpers shared by the benchmark drivers: flag parsing, endpoints, percentiles, a
// per-connection watchdog. Drivers are single-threaded: one io_context on the main thread.

#include <algorithm>
#include <boost/asio.hpp>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace lpk::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
inline constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

/// Prints one line naming the problem and exits with status 2 (bad flags).
[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::exit(2);
}

/// `--name value` flags after the mode word. Unknown flags are an error.
class Flags {
 public:
  Flags(int argc, char** argv, int first, std::vector<std::string> known) {
    for (int i = first; i < argc; i += 2) {
      std::string name = argv[i];
      if (std::find(known.begin(), known.end(), name) == known.end())
        die("unknown flag " + name + "; run with --help for the flags");
      if (i + 1 >= argc) die("flag " + name + " needs a value");
      values_[name] = argv[i + 1];
    }
  }
  std::string str(const std::string& name, std::string fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  double num(const std::string& name, double fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != '\0' || v < 0)
      die("flag " + name + " wants a non-negative number, got '" + it->second + "'");
    return v;
  }

 private:
  std::map<std::string, std::string> values_;
};

/// Parses `IPv4:PORT` (an IP literal; the drivers never resolve names).
inline tcp::endpoint parse_endpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) die("address '" + text + "' must look like 127.0.0.1:PORT");
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(text.substr(0, colon), ec);
  int port = std::atoi(text.c_str() + colon + 1);
  if (ec || port < 0 || port > 65535) die("address '" + text + "' must look like 127.0.0.1:PORT");
  return {addr, static_cast<unsigned short>(port)};
}

/// Value at quantile q (0..1) of the samples, in the samples' unit; 0 when there are none.
inline double percentile(std::vector<uint32_t>& samples, double q) {
  if (samples.empty()) return 0;
  auto idx = static_cast<size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
  std::nth_element(samples.begin(), samples.begin() + idx, samples.end());
  return samples[idx];
}

/// A listening socket on `ep` with a deep backlog (the benchmarks open connections in bursts).
inline tcp::acceptor make_acceptor(asio::io_context& io, const tcp::endpoint& ep) {
  tcp::acceptor acceptor(io);
  acceptor.open(ep.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen(4096);
  return acceptor;
}

/// Reads one byte from `socket` and writes it back (TCP_NODELAY set): the request/response both
/// benchmark servers answer. False when the peer went away first.
inline asio::awaitable<bool> echo_one_byte(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  char byte = 0;
  auto [ec, n] = co_await asio::async_read(socket, asio::buffer(&byte, 1), kUseTuple);
  if (ec) co_return false;
  std::tie(ec, n) = co_await asio::async_write(socket, asio::buffer(&byte, 1), kUseTuple);
  co_return !ec;
}

/// The server side of a benchmark: listens on --listen (default 127.0.0.1:0), prints
/// "listen PORT", serves each connection with `serve(socket)` until SIGINT/SIGTERM. A failed
/// accept (EMFILE while connections drain) waits `backoff` instead of spinning; with `say`, it
/// is reported on stderr as `say: accept: <why>`.
template <class Serve>
int run_server(const class Flags& flags, Serve serve, std::chrono::milliseconds backoff,
               const char* say = nullptr);

/// One slot per worker: the socket it is using and when that attempt must be abandoned.
struct Slot {
  tcp::socket* socket = nullptr;
  Clock::time_point deadline = Clock::time_point::max();
};

/// Closes the socket of any slot past its deadline; a cheap sweep instead of a timer per
/// connection, so that the driver spends its CPU on connections, not on timers.
inline asio::awaitable<void> watchdog(std::vector<Slot>& slots, const bool& done) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!done) {
    timer.expires_after(std::chrono::milliseconds(50));
    co_await timer.async_wait(kUseTuple);
    auto now = Clock::now();
    for (auto& slot : slots) {
      if (slot.socket != nullptr && now > slot.deadline) {
        boost::system::error_code ignored;
        slot.socket->close(ignored);
      }
    }
  }
}

/// Counts errors by message so that the report names what went wrong, not just how often.
class ErrorTally {
 public:
  void add(const boost::system::error_code& ec) { ++counts_[ec.message()]; }
  void add(const std::string& what) { ++counts_[what]; }
  uint64_t total() const {
    uint64_t n = 0;
    for (auto& [what, count] : counts_) n += count;
    return n;
  }
  void print(const char* prefix) const {
    for (auto& [what, count] : counts_)
      std::fprintf(stderr, "%s: %llu x %s\n", prefix, static_cast<unsigned long long>(count),
                   what.c_str());
  }

 private:
  std::map<std::string, uint64_t> counts_;
};

template <class Serve>
int run_server(const Flags& flags, Serve serve, std::chrono::milliseconds backoff,
               const char* say) {
  asio::io_context io;
  auto acceptor = make_acceptor(io, parse_endpoint(flags.str("--listen", "127.0.0.1:0")));
  std::printf("listen %u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  auto accept_loop = [&]() -> asio::awaitable<void> {
    asio::steady_timer pause(io);
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {
        if (say) std::fprintf(stderr, "%s: accept: %s\n", say, ec.message().c_str());
        pause.expires_after(backoff);
        co_await pause.async_wait(kUseTuple);
        continue;
      }
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  };
  asio::co_spawn(io, accept_loop(), asio::detached);
  io.run();
  return 0;
}

}  // namespace lpk::bench
