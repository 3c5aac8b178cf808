#include "dns/upstream.hpp"

#include <ares.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "dns/detail/wire.hpp"

namespace lpk::dns {
namespace asio = boost::asio;
using asio::ip::udp;

namespace {

ares_channel chan(void* p) { return static_cast<ares_channel>(p); }

void init_library() {
  static const int status = ares_library_init(ARES_LIB_INIT_ALL);
  if (status != ARES_SUCCESS) throw std::runtime_error("c-ares init failed");
}

std::vector<std::uint8_t> make_query(const std::string& name, std::uint16_t qtype) {
  std::vector<std::uint8_t> q = {0, 0, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 1};
  q.insert(q.end(), name.begin(), name.end());
  const std::uint8_t tail[] = {static_cast<std::uint8_t>(qtype >> 8),
                               static_cast<std::uint8_t>(qtype),
                               0,
                               1,
                               0,
                               0,
                               41,
                               0x04,
                               0xD0,
                               0,
                               0,
                               0,
                               0,
                               0,
                               0};  // OPT, 1232 bytes
  q.insert(q.end(), tail, tail + sizeof tail);
  return q;
}

}  // namespace

std::vector<udp::endpoint> read_resolv_conf(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path + ": give the upstream resolv.conf");
  std::vector<udp::endpoint> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value) || key != "nameserver") continue;
    std::uint16_t port = 53;
    if (auto hash = value.find('#'); hash != std::string::npos) {
      port = static_cast<std::uint16_t>(std::stoi(value.substr(hash + 1)));
      value.resize(hash);
    }
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(value, ec);
    if (!ec) out.emplace_back(addr, port);
  }
  return out;
}

struct Upstream::Watch {
  Watch(asio::io_context& io, int fd) : sd(io, fd) {}
  asio::posix::stream_descriptor sd;
  bool want_read = false, want_write = false, reading = false, writing = false;
};

struct Upstream::Pending {
  Upstream* self = nullptr;
  std::weak_ptr<bool> alive;
  std::vector<std::uint8_t> query;  // for the cache key; the client's ID is its first two bytes
  Callback done;
};

Upstream::Upstream(asio::io_context& io, UpstreamOptions opts)
    : io_(io),
      opts_(std::move(opts)),
      servers_(read_resolv_conf(opts_.resolv_conf)),
      cache_(
          opts_.clock ? opts_.clock : [] { return std::chrono::steady_clock::now(); },
          opts_.cache_entries),
      timer_(io) {
  init_library();
  std::erase_if(servers_, [&](const udp::endpoint& s) {
    for (const auto& x : opts_.exclude)
      if (x == s || (x.port() == s.port() && x.address().is_unspecified())) return true;
    return false;
  });
  ares_options o{};
  o.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH;  // relay SERVFAIL/REFUSED as they are
  o.timeout = static_cast<int>(opts_.timeout.count());
  o.tries = opts_.tries;
  o.sock_state_cb = [](void* d, ares_socket_t fd, int r, int w) { on_socket_state(d, fd, r, w); };
  o.sock_state_cb_data = this;
  ares_channel ch = nullptr;
  const int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
  if (ares_init_options(&ch, &o, mask) != ARES_SUCCESS) {
    throw std::runtime_error("c-ares channel init failed");
  }
  channel_ = ch;
  std::vector<ares_addr_port_node> nodes(servers_.size());
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    auto& n = nodes[i];
    const auto a = servers_[i].address();
    n.family = a.is_v4() ? AF_INET : AF_INET6;
    if (a.is_v4()) {
      const auto b = a.to_v4().to_bytes();
      std::memcpy(&n.addr.addr4, b.data(), 4);
    } else {
      const auto b = a.to_v6().to_bytes();
      std::memcpy(&n.addr.addr6, b.data(), 16);
    }
    n.udp_port = n.tcp_port = servers_[i].port();
    n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
  }
  ares_set_servers_ports(ch, nodes.empty() ? nullptr : nodes.data());
}

Upstream::~Upstream() { stop(); }

void Upstream::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  timer_.cancel();
  if (channel_) ares_destroy(chan(channel_));  // answers with ARES_EDESTRUCTION: dropped
  channel_ = nullptr;
  for (auto& [fd, w] : watches_) w->sd.release();
  watches_.clear();
}

void Upstream::forward(const Query& q, Callback done) {
  auto p = std::make_unique<Pending>();
  p->query.assign(q.packet.begin(), q.packet.end());
  p->done = std::move(done);
  send(q.packet, std::move(p));
}

void Upstream::query(const std::string& name, std::uint16_t qtype, Callback done) {
  auto p = std::make_unique<Pending>();
  p->query = make_query(name, qtype);
  Query q;
  std::vector<std::uint8_t> hit;
  if (parse_query(p->query, q) == ParseStatus::kOk && cache_.lookup(q, hit)) {
    asio::post(io_, [done = std::move(done), hit = std::move(hit)] { done(hit); });
    return;
  }
  p->done = std::move(done);
  auto packet = p->query;
  send(packet, std::move(p));
}

void Upstream::send(std::span<const std::uint8_t> packet, std::unique_ptr<Pending> p) {
  if (stopped_) return;
  if (servers_.empty()) {
    asio::post(io_, [done = std::move(p->done)] { done({}); });
    return;
  }
  p->self = this;
  p->alive = alive_;
  ++sent_;
  ares_send(chan(channel_), packet.data(), static_cast<int>(packet.size()), &Upstream::on_answer,
            p.release());
  schedule_timer();
}

void Upstream::on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || p->alive.expired()) return;
  std::vector<std::uint8_t> answer;
  if (status == ARES_SUCCESS && abuf && alen >= static_cast<int>(detail::kHeaderSize)) {
    answer.assign(abuf, abuf + alen);
    std::copy(p->query.begin(), p->query.begin() + 2, answer.begin());  // the client's ID
    Query q;
    if (parse_query(p->query, q) == ParseStatus::kOk) p->self->cache_.store(q, answer);
  }
  // c-ares may call back from inside ares_send (immediate failure): always defer.
  asio::post(p->self->io_,
             [done = std::move(p->done), answer = std::move(answer)] { done(answer); });
}

void Upstream::on_socket_state(void* data, int fd, int readable, int writable) {
  auto* self = static_cast<Upstream*>(data);
  auto it = self->watches_.find(fd);
  if (!readable && !writable) {
    // c-ares is about to close fd: deregister it from the reactor first, without closing.
    if (it != self->watches_.end()) {
      it->second->sd.release();
      self->watches_.erase(it);
    }
    return;
  }
  if (it == self->watches_.end()) {
    it = self->watches_.emplace(fd, std::make_shared<Watch>(self->io_, fd)).first;
  }
  it->second->want_read = readable;
  it->second->want_write = writable;
  self->arm(fd, it->second);
}

bool Upstream::alive(int fd, const std::shared_ptr<Watch>& w) const {
  auto it = watches_.find(fd);
  return !stopped_ && it != watches_.end() && it->second == w;
}

void Upstream::arm(int fd, const std::shared_ptr<Watch>& w) {
  using Wait = asio::posix::stream_descriptor::wait_type;
  auto on_ready = [this, fd, w](bool read, boost::system::error_code ec) {
    (read ? w->reading : w->writing) = false;
    if (ec || !alive(fd, w)) return;
    ares_process_fd(chan(channel_), read ? fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : fd);
    if (alive(fd, w)) arm(fd, w);
    if (!stopped_) schedule_timer();
  };
  if (w->want_read && !w->reading) {
    w->reading = true;
    w->sd.async_wait(Wait::wait_read, [on_ready](auto ec) { on_ready(true, ec); });
  }
  if (w->want_write && !w->writing) {
    w->writing = true;
    w->sd.async_wait(Wait::wait_write, [on_ready](auto ec) { on_ready(false, ec); });
  }
}

void Upstream::schedule_timer() {
  timeval tv{};
  if (!ares_timeout(chan(channel_), nullptr, &tv)) {
    timer_.cancel();
    return;
  }
  timer_.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired() || stopped_) return;
    ares_process_fd(chan(channel_), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    schedule_timer();
  });
}

}  // namespace lpk::dns
