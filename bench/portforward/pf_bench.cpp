// Port-forward benchmark driver (bench/portforward/run.sh runs it).
//
//   lpk_bench_pf serve --port P
//       the server inside the pod. Each connection sends one request: 'D' + u64 n (big-endian):
//       the server sends n bytes and closes; 'P': the server answers one byte and closes.
//   lpk_bench_pf fetch --bytes N (--local ADDR:PORT | --pod NS/POD:PORT --kubeconfig F)
//       one connection downloading N bytes; prints {"bytes":N,"seconds":s,"gbit_s":g}.
//   lpk_bench_pf ttfb --count N (--local ADDR:PORT | --pod NS/POD:PORT --kubeconfig F)
//       N connections one after another, each timed from the start of its connect (for --pod:
//       the start of its WebSocket) to the first byte of the answer; prints p50/p99 in us.
//
// --local goes through lpk-proxy's listener (one tunnel for all); --pod opens one port-forward
// WebSocket per connection with kube::PortForward, as a client without lpk's tunnel does.

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "bench/bench_util.hpp"
#include "kube/auth.hpp"
#include "kube/config.hpp"
#include "kube/portforward.hpp"

namespace {

using namespace lpk::bench;
using boost::system::error_code;

// ---- the pod's server -----------------------------------------------------------------------

asio::awaitable<void> answer(tcp::socket s) {
  s.set_option(tcp::no_delay(true));
  std::array<unsigned char, 9> req{};
  auto [ec, n] = co_await asio::async_read(s, asio::buffer(req, 1), kUseTuple);
  if (ec) co_return;
  if (req[0] == 'P') {
    co_await asio::async_write(s, asio::buffer("p", 1), kUseTuple);
  } else if (req[0] == 'D') {
    std::tie(ec, n) = co_await asio::async_read(s, asio::buffer(req.data() + 1, 8), kUseTuple);
    if (ec) co_return;
    std::uint64_t left = 0;
    for (int i = 1; i <= 8; ++i) left = left << 8 | req[i];
    std::vector<char> chunk(256 * 1024, 'd');
    while (left > 0) {
      auto take = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
      std::tie(ec, n) = co_await asio::async_write(s, asio::buffer(chunk.data(), take), kUseTuple);
      if (ec) co_return;
      left -= take;
    }
  }
  s.shutdown(tcp::socket::shutdown_send, ec);
  char sink[64];
  while (!ec) std::tie(ec, n) = co_await s.async_read_some(asio::buffer(sink), kUseTuple);
}

asio::awaitable<void> serve(tcp::acceptor acceptor) {
  for (;;) {
    auto [ec, s] = co_await acceptor.async_accept(kUseTuple);
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), answer(std::move(s)), asio::detached);
  }
}

// ---- clients: a byte stream is a local TCP connection or one port-forward --------------------

struct Pod {
  lpk::kube::RestConfig config;
  std::unique_ptr<lpk::kube::Credentials> credentials;
  std::string ns, name;
  std::uint16_t port = 0;
};

Pod parse_pod(const std::string& text, const std::string& kubeconfig) {
  auto slash = text.find('/'), colon = text.rfind(':');
  if (slash == std::string::npos || colon == std::string::npos || colon < slash)
    die("--pod wants NS/POD:PORT, got '" + text + "'");
  Pod p;
  p.config = lpk::kube::load_config({kubeconfig, "", ""});
  p.credentials = std::make_unique<lpk::kube::Credentials>(p.config);
  p.ns = text.substr(0, slash);
  p.name = text.substr(slash + 1, colon - slash - 1);
  p.port = static_cast<std::uint16_t>(std::atoi(text.c_str() + colon + 1));
  return p;
}

class Stream {
 public:
  static asio::awaitable<std::unique_ptr<Stream>> open(const std::optional<tcp::endpoint>& local,
                                                       Pod* pod) {
    auto ex = co_await asio::this_coro::executor;
    auto out = std::make_unique<Stream>();
    if (local) {
      out->socket_.emplace(ex);
      auto [ec] = co_await out->socket_->async_connect(*local, kUseTuple);
      if (ec) die("connect " + ec.message());
      out->socket_->set_option(tcp::no_delay(true));
      co_return out;
    }
    auto target = lpk::kube::portforward_target(pod->config, pod->credentials->current(), pod->ns,
                                                pod->name, pod->port);
    auto opened = co_await lpk::kube::PortForward::open(ex, target);
    if (!opened) die(opened.error().message);
    out->forward_ = std::move(*opened);
    co_return out;
  }
  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (socket_) co_return co_await socket_->async_read_some(b, kUseTuple);
    co_return co_await forward_->read_some(b);
  }
  asio::awaitable<error_code> write(std::string data) {
    if (socket_) {
      auto [ec, n] = co_await asio::async_write(*socket_, asio::buffer(data), kUseTuple);
      co_return ec;
    }
    std::array<asio::const_buffer, 1> one = {asio::buffer(data)};
    auto [ec, n] = co_await forward_->write(one);
    co_return ec;
  }

 private:
  std::optional<tcp::socket> socket_;
  std::unique_ptr<lpk::kube::PortForward> forward_;
};

std::string download_request(std::uint64_t n) {
  std::string r = "D";
  for (int i = 7; i >= 0; --i) r.push_back(static_cast<char>(n >> (8 * i)));
  return r;
}

asio::awaitable<void> fetch(std::optional<tcp::endpoint> local, Pod* pod, std::uint64_t bytes) {
  auto start = Clock::now();
  auto s = co_await Stream::open(local, pod);
  co_await s->write(download_request(bytes));
  std::vector<char> buf(256 * 1024);
  std::uint64_t got = 0;
  for (;;) {
    auto [ec, n] = co_await s->read_some(asio::buffer(buf));
    got += n;
    if (ec) break;
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (got != bytes)
    die("fetched " + std::to_string(got) + " of " + std::to_string(bytes) + " bytes");
  std::printf("{\"bytes\":%llu,\"seconds\":%.4f,\"gbit_s\":%.4f}\n",
              static_cast<unsigned long long>(bytes), secs, bytes * 8 / secs / 1e9);
}

asio::awaitable<void> ttfb(std::optional<tcp::endpoint> local, Pod* pod, int count) {
  std::vector<uint32_t> us;
  for (int i = 0; i < count; ++i) {
    auto start = Clock::now();
    auto s = co_await Stream::open(local, pod);
    co_await s->write("P");
    char c;
    auto [ec, n] = co_await s->read_some(asio::buffer(&c, 1));
    if (ec || n != 1) die("no first byte: " + ec.message());
    us.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()));
  }
  std::printf("{\"count\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", count, percentile(us, 0.5),
              percentile(us, 0.99));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::printf(
        "usage: lpk_bench_pf serve --port P | fetch --bytes N | ttfb --count N, with\n"
        "       --local ADDR:PORT or --pod NS/POD:PORT --kubeconfig F\n");
    return argc < 2 ? 2 : 0;
  }
  std::string mode = argv[1];
  Flags flags(argc, argv, 2, {"--port", "--bytes", "--count", "--local", "--pod", "--kubeconfig"});
  asio::io_context io(1);
  if (mode == "serve") {
    auto port = static_cast<unsigned short>(flags.num("--port", 7000));
    asio::co_spawn(io, serve(make_acceptor(io, {asio::ip::make_address("0.0.0.0"), port})),
                   asio::detached);
    io.run();
    return 0;
  }
  std::optional<tcp::endpoint> local;
  std::optional<Pod> pod;
  if (!flags.str("--local", "").empty()) local = parse_endpoint(flags.str("--local", ""));
  try {
    if (!flags.str("--pod", "").empty())
      pod = parse_pod(flags.str("--pod", ""), flags.str("--kubeconfig", ""));
  } catch (const std::exception& e) {
    die(e.what());
  }
  if (!local == !pod) die("give exactly one of --local and --pod");
  Pod* p = pod ? &*pod : nullptr;
  if (mode == "fetch") {
    auto bytes = static_cast<std::uint64_t>(flags.num("--bytes", 256 << 20));
    asio::co_spawn(io, fetch(local, p, bytes), asio::detached);
  } else if (mode == "ttfb") {
    asio::co_spawn(io, ttfb(local, p, static_cast<int>(flags.num("--count", 200))), asio::detached);
  } else {
    die("unknown mode " + mode + "; serve, fetch or ttfb");
  }
  io.run();
  return 0;
}
