// lpk-faultrelay: a TCP relay that misbehaves on command. Tests (and users) put it between
// `lpk-proxy run` and `lpk-agent` to see what a dropped link, a frozen port-forward, latency or
// a thin pipe do to the tunnel, without a cluster (issue 10).
//
//   lpk-faultrelay --to HOST:PORT [--listen ADDR:PORT] [--control ADDR:PORT]
//
// Once bound it prints `listen ADDR:PORT` and `control ADDR:PORT` (port 0 picks a free one).
// The control port takes one command per line and answers each with one line, `ok ...` or
// `error ...`, once the command has taken effect:
//   drop            resets every relayed connection (RST to both sides): a link that breaks
//   freeze          stops relaying on every current connection without closing it, the way a
//                   frozen port-forward or a black-holed route does; new connections still pass
//   thaw            relays again on the frozen connections
//   delay MS        holds every chunk MS milliseconds before passing it on
//   throttle BPS    at most BPS bytes per second, per direction of each connection (0: no limit)
//   refuse on|off   resets new connections at once (an endpoint that is down)
//   stats           ok connections N up BYTES down BYTES drops N
//
// Single-threaded; everything runs on one io_context.

#include <boost/asio.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kQueuedChunks = 64;  // per direction: 4 MiB in flight inside the relay

struct Faults {
  std::chrono::milliseconds delay{0};
  std::uint64_t throttle = 0;  // bytes per second; 0: no limit
  bool refuse = false;
};

struct Counters {
  std::uint64_t up = 0, down = 0, drops = 0;
};

// A chunk read from one side, due on the other side at `due`; empty data means end of stream.
struct Chunk {
  Clock::time_point due;
  std::vector<char> data;
};
using ChunkChannel = asio::experimental::channel<void(error_code, Chunk)>;

/// One relayed connection: the client's socket, the socket to the target, and the state the
/// commands change.
class Relayed : public std::enable_shared_from_this<Relayed> {
 public:
  Relayed(tcp::socket client, tcp::socket server, const Faults& faults, Counters& counters)
      : client_(std::move(client)),
        server_(std::move(server)),
        faults_(faults),
        counters_(counters),
        thawed_(client_.get_executor()) {}

  void start() {
    auto ex = client_.get_executor();
    auto self = shared_from_this();
    for (bool upward : {true, false}) {
      auto channel = std::make_shared<ChunkChannel>(ex, kQueuedChunks);
      tcp::socket& from = upward ? client_ : server_;
      tcp::socket& to = upward ? server_ : client_;
      std::uint64_t& counter = upward ? counters_.up : counters_.down;
      asio::co_spawn(ex, read_side(self, from, channel), asio::detached);
      asio::co_spawn(ex, write_side(self, to, channel, counter), asio::detached);
    }
  }

  void freeze() {
    frozen_ = true;
    thawed_.expires_at(Clock::time_point::max());
  }
  void thaw() {
    frozen_ = false;
    thawed_.cancel();
  }
  /// Resets both sides (RST): what the peers see of a link that breaks.
  void reset() {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    for (tcp::socket* s : {&client_, &server_}) {
      s->set_option(asio::socket_base::linger(true, 0), ec);
      s->close(ec);
    }
    thaw();  // wakes the coroutines waiting for a thaw, which then see the closed sockets
  }
  bool closed() const { return closed_; }

 private:
  asio::awaitable<void> wait_until_thawed() {
    while (frozen_ && !closed_) co_await thawed_.async_wait(kTuple);
  }

  static asio::awaitable<void> read_side(std::shared_ptr<Relayed> self, tcp::socket& from,
                                         std::shared_ptr<ChunkChannel> channel) {
    for (;;) {
      co_await self->wait_until_thawed();
      std::vector<char> data(kChunk);
      auto [ec, n] = co_await from.async_read_some(asio::buffer(data), kTuple);
      if (ec && ec != asio::error::eof) {
        // A reset (or a drop): the other side gets a reset too, not a clean end.
        self->reset();
        channel->close();
        co_return;
      }
      data.resize(ec ? 0 : n);
      Chunk chunk{Clock::now() + self->faults_.delay, std::move(data)};
      bool end = chunk.data.empty();
      co_await channel->async_send(error_code{}, std::move(chunk), kTuple);
      if (end) co_return;
    }
  }

  static asio::awaitable<void> write_side(std::shared_ptr<Relayed> self, tcp::socket& to,
                                          std::shared_ptr<ChunkChannel> channel,
                                          std::uint64_t& counter) {
    co_await pass_on(self, to, *channel, counter);
    channel->close();  // a reader blocked on a full channel ends too
  }

  static asio::awaitable<void> pass_on(std::shared_ptr<Relayed> self, tcp::socket& to,
                                       ChunkChannel& channel, std::uint64_t& counter) {
    asio::steady_timer timer(to.get_executor());
    auto next_send = Clock::now();  // the throttle's schedule
    for (;;) {
      auto [ec, chunk] = co_await channel.async_receive(kTuple);
      if (ec) co_return;
      if (chunk.due > Clock::now()) {
        timer.expires_at(chunk.due);
        co_await timer.async_wait(kTuple);
      }
      co_await self->wait_until_thawed();
      if (self->closed_) co_return;
      if (chunk.data.empty()) {
        // The other side ended its stream: pass the half-close on; the connection ends when
        // both directions have.
        error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
        if (++self->ended_ == 2) self->reset_quietly();
        co_return;
      }
      if (auto rate = self->faults_.throttle) {
        next_send = std::max(next_send, Clock::now());
        timer.expires_at(next_send);
        co_await timer.async_wait(kTuple);
        next_send += std::chrono::microseconds(chunk.data.size() * 1'000'000 / rate);
      }
      auto [wec, n] = co_await asio::async_write(to, asio::buffer(chunk.data), kTuple);
      if (wec) {
        self->reset();
        co_return;
      }
      counter += n;
    }
  }

  void reset_quietly() {
    closed_ = true;
    error_code ec;
    client_.close(ec);
    server_.close(ec);
  }

  tcp::socket client_, server_;
  const Faults& faults_;
  Counters& counters_;
  asio::steady_timer thawed_;
  bool frozen_ = false;
  bool closed_ = false;
  int ended_ = 0;
};

class Relay {
 public:
  Relay(asio::io_context& io, tcp::endpoint listen, tcp::endpoint control, tcp::endpoint target)
      : io_(io), acceptor_(io, listen), control_(io, control), target_(target) {}

  tcp::endpoint listen_endpoint() const { return acceptor_.local_endpoint(); }
  tcp::endpoint control_endpoint() const { return control_.local_endpoint(); }

  void start() {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    asio::co_spawn(io_, control_loop(), asio::detached);
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, client] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      if (faults_.refuse) {
        error_code ignored;
        client.set_option(asio::socket_base::linger(true, 0), ignored);
        continue;  // closed (reset) as it goes out of scope
      }
      asio::co_spawn(io_, connect(std::move(client)), asio::detached);
    }
  }

  asio::awaitable<void> connect(tcp::socket client) {
    tcp::socket server(io_);
    auto [ec] = co_await server.async_connect(target_, kTuple);
    error_code ignored;
    if (ec) {
      client.set_option(asio::socket_base::linger(true, 0), ignored);
      co_return;
    }
    client.set_option(tcp::no_delay(true), ignored);
    server.set_option(tcp::no_delay(true), ignored);
    prune();
    auto relayed = std::make_shared<Relayed>(std::move(client), std::move(server), faults_,
                                             counters_);
    relayed->start();
    live_.push_back(relayed);
  }

  void prune() {
    std::erase_if(live_, [](const std::weak_ptr<Relayed>& w) {
      auto r = w.lock();
      return !r || r->closed();
    });
  }

  std::string command(const std::string& line) {
    std::istringstream in(line);
    std::string verb, arg;
    in >> verb >> arg;
    prune();
    auto each = [&](auto f) {
      for (auto& w : live_) {
        if (auto r = w.lock()) f(*r);
      }
    };
    if (verb == "drop") {
      std::size_t n = live_.size();
      each([](Relayed& r) { r.reset(); });
      counters_.drops += n;
      prune();
      return "ok dropped " + std::to_string(n);
    }
    if (verb == "freeze") {
      each([](Relayed& r) { r.freeze(); });
      return "ok frozen " + std::to_string(live_.size());
    }
    if (verb == "thaw") {
      each([](Relayed& r) { r.thaw(); });
      return "ok thawed " + std::to_string(live_.size());
    }
    if (verb == "delay" || verb == "throttle") {
      char* end = nullptr;
      unsigned long long v = std::strtoull(arg.c_str(), &end, 10);
      if (arg.empty() || *end != '\0') return "error " + verb + " wants a number";
      if (verb == "delay") faults_.delay = std::chrono::milliseconds(v);
      else faults_.throttle = v;
      return "ok " + verb + " " + arg;
    }
    if (verb == "refuse" && (arg == "on" || arg == "off")) {
      faults_.refuse = arg == "on";
      return "ok refuse " + arg;
    }
    if (verb == "stats") {
      return "ok connections " + std::to_string(live_.size()) + " up " +
             std::to_string(counters_.up) + " down " + std::to_string(counters_.down) +
             " drops " + std::to_string(counters_.drops);
    }
    return "error unknown command '" + line +
           "' (drop, freeze, thaw, delay MS, throttle BPS, refuse on|off, stats)";
  }

  asio::awaitable<void> control_loop() {
    for (;;) {
      auto [ec, socket] = co_await control_.async_accept(kTuple);
      if (ec) co_return;
      asio::co_spawn(io_, control_session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> control_session(tcp::socket socket) {
    std::string buffer;
    for (;;) {
      auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n',
                                                     kTuple);
      if (ec) co_return;
      std::string line = buffer.substr(0, n - 1);
      buffer.erase(0, n);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::string answer = command(line) + "\n";
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(answer), kTuple);
      if (wec) co_return;
    }
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  tcp::acceptor control_;
  tcp::endpoint target_;
  Faults faults_;
  Counters counters_;
  std::vector<std::weak_ptr<Relayed>> live_;
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

tcp::endpoint parse_endpoint(const std::string& text, const std::string& flag) {
  auto colon = text.rfind(':');
  std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  char* end = nullptr;
  std::string port_text = colon == std::string::npos ? "" : text.substr(colon + 1);
  unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (ec || port_text.empty() || *end != '\0' || port > 65535) {
    throw UsageError(flag + " wants IP:PORT, such as 127.0.0.1:4590, got '" + text + "'");
  }
  return {address, static_cast<std::uint16_t>(port)};
}

constexpr const char* kUsage =
    "usage: lpk-faultrelay --to IP:PORT [--listen IP:PORT] [--control IP:PORT]\n"
    "Relays TCP to --to and takes commands on the control port, one per line:\n"
    "  drop | freeze | thaw | delay MS | throttle BYTES_PER_SEC | refuse on|off | stats";

}  // namespace

int main(int argc, char** argv) {
  tcp::endpoint listen{asio::ip::make_address("127.0.0.1"), 0};
  tcp::endpoint control{asio::ip::make_address("127.0.0.1"), 0};
  std::optional<tcp::endpoint> target;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string flag = argv[i];
      if (flag == "-h" || flag == "--help") {
        std::cout << kUsage << "\n";
        return 0;
      }
      if (i + 1 >= argc) throw UsageError("unknown flag or missing value: " + flag);
      std::string value = argv[++i];
      if (flag == "--to") target = parse_endpoint(value, flag);
      else if (flag == "--listen") listen = parse_endpoint(value, flag);
      else if (flag == "--control") control = parse_endpoint(value, flag);
      else throw UsageError("unknown flag " + flag);
    }
    if (!target) throw UsageError("--to IP:PORT is required");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-faultrelay: %s (see lpk-faultrelay --help)\n", e.what());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context io(1);
  std::optional<Relay> relay;
  try {
    relay.emplace(io, listen, control, *target);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-faultrelay: cannot listen: %s\n", e.what());
    return 1;
  }
  auto text = [](const tcp::endpoint& e) {
    auto a = e.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
  };
  std::printf("listen %s\ncontrol %s\n", text(relay->listen_endpoint()).c_str(),
              text(relay->control_endpoint()).c_str());
  std::fflush(stdout);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) { io.stop(); });
  relay->start();
  io.run();
  return 0;
}
