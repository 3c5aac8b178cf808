#include "tools/kubesim/portforward.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "tools/kubesim/certs.hpp"
#include "tools/kubesim/coro.hpp"
#include "tools/kubesim/runtime/netns.hpp"
#include "tools/kubesim/status.hpp"
#include "kube/text.hpp"

namespace lpk::kubesim {

namespace websocket = beast::websocket;
using asio::awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using Ws = websocket::stream<TlsStream&>;
using Outbox = asio::experimental::channel<void(boost::system::error_code, std::string)>;

std::optional<std::string> pick_portforward_protocol(const std::string& offered) {
  if (offered.find_first_not_of(" \t,") == std::string::npos) return std::string();
  size_t pos = 0;
  while (pos < offered.size()) {
    size_t comma = offered.find(',', pos);
    if (comma == std::string::npos) comma = offered.size();
    std::string p = offered.substr(pos, comma - pos);
    p.erase(0, p.find_first_not_of(" \t"));
    p.erase(p.find_last_not_of(" \t") + 1);
    if (p == "v4.channel.k8s.io" || p == "v4.base64.channel.k8s.io") return p;
    pos = comma + 1;
  }
  return std::nullopt;
}

PortForward::PortForward(
    std::function<std::string(const std::string&, const std::string&)> netns_of,
    std::function<std::string(const std::string&, const std::string&)> uid_of)
    : netns_of_(std::move(netns_of)), uid_of_(std::move(uid_of)) {}

namespace {

}  // namespace

struct PortForward::Live {
  explicit Live(TlsStream& stream) : stream(stream), thawed(stream.get_executor()) {}
  TlsStream& stream;
  bool frozen = false;
  asio::steady_timer thawed;  // cancelled on thaw

  /// Returns at once unless frozen; then when thawed (or the connection is cut).
  awaitable<void> wait_thawed() {
    while (frozen) co_await thawed.async_wait(kTuple);
  }
};

namespace {

// Keeps a port-forward in the live set for its whole life.
class Registration {
 public:
  Registration(std::set<PortForward::Live*>& set, PortForward::Live& live) : set_(set), live_(live) {
    set_.insert(&live_);
  }
  ~Registration() { set_.erase(&live_); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  std::set<PortForward::Live*>& set_;
  PortForward::Live& live_;
};

struct Session {
  bool base64;
  Outbox outbox;
  PortForward::Live& live;
  Session(asio::any_io_executor ex, bool b64, PortForward::Live& live)
      : base64(b64), outbox(ex, 16), live(live) {}

  // A frame as the kubelet writes it: [channel][payload] binary, or '0'+channel and base64 text.
  std::string frame(uint8_t ch, const std::string& payload) const {
    if (!base64) return std::string(1, char(ch)) + payload;
    return std::string(1, char('0' + ch)) + text::base64_encode(payload);
  }
};

std::vector<int> parse_ports(const std::string& s) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= s.size() && !s.empty()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string p = s.substr(pos, comma - pos);
    char* end = nullptr;
    long v = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end || v < 1 || v > 65535) {
      throw bad_request("invalid port \"" + p + "\": must be between 1 and 65535");
    }
    out.push_back(int(v));
    pos = comma + 1;
  }
  if (out.empty()) throw bad_request("at least one port must be specified");
  return out;
}

// Counts coroutines spawned into it; wait() resumes once all have finished.
class TaskGroup {
 public:
  explicit TaskGroup(asio::any_io_executor ex) : ex_(ex), done_(ex) {}
  void spawn(awaitable<void> task) {
    ++running_;
    asio::co_spawn(ex_, std::move(task), [this](std::exception_ptr) {
      if (--running_ == 0) done_.cancel();
    });
  }
  awaitable<void> wait() {
    while (running_ > 0) {
      done_.expires_at(asio::steady_timer::time_point::max());
      co_await done_.async_wait(kTuple);
    }
  }

 private:
  asio::any_io_executor ex_;
  asio::steady_timer done_;
  int running_ = 0;
};

// The only writer of the WebSocket; an empty message ends it. Once it is gone the outbox is
// closed, so that senders fail instead of waiting for room that never comes.
awaitable<void> write_loop(Ws& ws, Session& s) {
  for (;;) {
    auto [ec, msg] = co_await s.outbox.async_receive(kTuple);
    if (ec || msg.empty()) break;
    co_await s.live.wait_thawed();
    ws.text(s.base64);
    auto [wec, n] = co_await ws.async_write(asio::buffer(msg), kTuple);
    if (wec) break;
  }
  s.outbox.close();
}

awaitable<void> pod_to_client(tcp::socket& sock, Session& s, uint8_t ch) {
  std::string buf(32 * 1024, '\0');
  for (;;) {
    co_await s.live.wait_thawed();
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), kTuple);
    if (ec) co_return;
    co_await s.live.wait_thawed();
    auto [sec] = co_await s.outbox.async_send({}, s.frame(ch, buf.substr(0, n)), kTuple);
    if (sec) co_return;
  }
}

void close_all(std::vector<std::unique_ptr<tcp::socket>>& socks) {
  for (auto& sk : socks) {
    boost::system::error_code ec;
    if (sk) sk->close(ec);
  }
}

// Reads client frames and hands data-channel payloads to the pod sockets; when the client
// goes away the pod connections go too.
awaitable<void> client_to_pods(Ws& ws, Session& s,
                               std::vector<std::unique_ptr<tcp::socket>>& socks) {
  beast::flat_buffer buf;
  for (;;) {
    co_await s.live.wait_thawed();
    auto [ec, n] = co_await ws.async_read(buf, kTuple);
    if (ec) break;
    co_await s.live.wait_thawed();
    std::string msg = beast::buffers_to_string(buf.data());
    buf.consume(buf.size());
    if (msg.empty()) continue;
    int ch = s.base64 ? msg[0] - '0' : static_cast<uint8_t>(msg[0]);
    std::string payload = msg.substr(1);
    if (s.base64) {
      auto decoded = text::base64_decode(payload);
      if (!decoded) continue;
      payload = std::move(*decoded);
    }
    // Odd channels are the server's error channels: whatever a client writes there is dropped.
    if (ch < 0 || ch % 2 != 0 || size_t(ch / 2) >= socks.size() || !socks[ch / 2]) continue;
    auto [wec, wn] = co_await asio::async_write(*socks[ch / 2], asio::buffer(payload), kTuple);
    if (wec) {
      boost::system::error_code ignored;
      socks[ch / 2]->close(ignored);
    }
  }
  close_all(socks);
}

// One connect to address:port from inside netns; "" or Go's dial error text.
awaitable<std::string> dial_in(asio::any_io_executor ex, const std::string& netns,
                               const tcp::endpoint& target, std::unique_ptr<tcp::socket>& out) {
  auto sock = std::make_unique<tcp::socket>(ex);
  const bool v6 = target.address().is_v6();
  int fd = socket_in_netns(netns, v6 ? AF_INET6 : AF_INET, SOCK_STREAM);
  boost::system::error_code ec;
  if (fd < 0) ec = boost::system::error_code(errno, boost::system::system_category());
  if (!ec) sock->assign(target.protocol(), fd, ec);
  if (!ec) std::tie(ec) = co_await sock->async_connect(target, kTuple);
  if (ec) {
    std::string host = v6 ? "[::1]" : "127.0.0.1";
    co_return std::string("dial tcp") + (v6 ? "6 " : "4 ") + host + ":" +
        std::to_string(target.port()) + ": connect: " + ec.message();
  }
  sock->set_option(tcp::no_delay(true), ec);
  out = std::move(sock);
  co_return "";
}

// Connects to localhost:port inside the pod as containerd does (sandbox_portforward_linux.go):
// IPv4 first, then IPv6, so a server that listens on ::1 only is reached too. Returns "" or
// containerd's error text.
awaitable<std::string> dial_pod(asio::any_io_executor ex, const std::string& netns, int port,
                                std::unique_ptr<tcp::socket>& out) {
  auto v4 = co_await dial_in(ex, netns, {asio::ip::address_v4::loopback(), uint16_t(port)}, out);
  if (v4.empty()) co_return "";
  auto v6 = co_await dial_in(ex, netns, {asio::ip::address_v6::loopback(), uint16_t(port)}, out);
  if (v6.empty()) co_return "";
  co_return "failed to connect to localhost:" + std::to_string(port) + " inside namespace \"" +
      netns + "\", IPv4: " + v4 + " IPv6 " + v6 + " ";
}

}  // namespace

awaitable<bool> PortForward::serve(Request& req, TlsStream& stream, const Route& r,
                                   const std::map<std::string, std::string>& q) {
  if (!websocket::is_upgrade(req)) {
    throw bad_request("Upgrade request required");
  }
  if (std::chrono::steady_clock::now() < refuse_until_) {
    throw ApiError(503, "ServiceUnavailable",
                   "the server is currently unable to handle the request");
  }
  auto proto = pick_portforward_protocol(std::string(req[http::field::sec_websocket_protocol]));
  if (!proto) {
    // x/net/websocket refuses an unsupported subprotocol with 403 and no body.
    http::response<http::string_body> res{http::status::forbidden, req.version()};
    res.keep_alive(false);
    res.prepare_payload();
    co_await write_response(stream, res);
    co_return false;
  }
  std::vector<int> ports = parse_ports(q.count("ports") ? q.at("ports") : "");
  std::string netns = netns_of_(r.ns, r.name);
  if (netns.empty()) throw bad_request("pod " + r.name + " is not running");
  std::string uid = uid_of_(r.ns, r.name);
  auto ex = co_await asio::this_coro::executor;
  Ws ws(stream);
  ws.set_option(websocket::stream_base::decorator([p = *proto](websocket::response_type& res) {
    if (!p.empty()) res.set(http::field::sec_websocket_protocol, p);
  }));
  ws.read_message_max(64 * 1024 * 1024);
  auto [aec] = co_await ws.async_accept(req, kTuple);
  if (aec) co_return false;
  Live live(stream);
  Registration registered(live_, live);
  Session s(ex, *proto == "v4.base64.channel.k8s.io", live);
  for (size_t i = 0; i < ports.size(); ++i) {
    std::string prefix = {char(ports[i] & 0xff), char(ports[i] >> 8)};
    s.outbox.try_send(boost::system::error_code{}, s.frame(uint8_t(2 * i), prefix));
    s.outbox.try_send(boost::system::error_code{}, s.frame(uint8_t(2 * i + 1), prefix));
  }
  TaskGroup writer(ex), pods(ex), client(ex);
  writer.spawn(write_loop(ws, s));
  // Indexed by port; null where the pod port refused.
  std::vector<std::unique_ptr<tcp::socket>> socks(ports.size());
  for (size_t i = 0; i < ports.size(); ++i) {
    std::string msg = co_await dial_pod(ex, netns, ports[i], socks[i]);
    if (!msg.empty()) {
      msg = "error forwarding port " + std::to_string(ports[i]) + " to pod " + r.name + ", uid " +
            uid + ": " + msg;
      co_await s.outbox.async_send({}, s.frame(uint8_t(2 * i + 1), msg), kTuple);
    }
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    if (socks[i]) pods.spawn(pod_to_client(*socks[i], s, uint8_t(2 * i)));
  }
  client.spawn(client_to_pods(ws, s, socks));
  co_await pods.wait();
  // Pod side done (or the client left and closed it): flush, then close with 1000.
  co_await s.outbox.async_send({}, std::string(), kTuple);
  co_await writer.wait();
  co_await ws.async_close(websocket::close_code::normal, kTuple);
  close_all(socks);
  co_await client.wait();
  co_return false;
}

std::size_t PortForward::drop_all() {
  std::size_t n = live_.size();
  for (Live* l : std::set<Live*>(live_)) {
    boost::system::error_code ec;
    auto& socket = beast::get_lowest_layer(l->stream).socket();
    socket.set_option(asio::socket_base::linger(true, 0), ec);
    socket.close(ec);
    l->frozen = false;
    l->thawed.cancel();
  }
  return n;
}

std::size_t PortForward::freeze_all() {
  for (Live* l : live_) {
    l->frozen = true;
    l->thawed.expires_at(asio::steady_timer::time_point::max());
  }
  return live_.size();
}

void PortForward::refuse_for(std::chrono::milliseconds how_long) {
  refuse_until_ = std::chrono::steady_clock::now() + how_long;
}

std::size_t PortForward::thaw_all() {
  std::size_t n = 0;
  for (Live* l : live_) {
    n += l->frozen;
    l->frozen = false;
    l->thawed.cancel();
  }
  return n;
}

}  // namespace lpk::kubesim
