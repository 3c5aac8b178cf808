#include "agent/dns_forwarder.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <random>
#include <sstream>

#include "agent/coro.hpp"
#include "kube/text.hpp"

namespace lpk::agent {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;

namespace {

constexpr std::size_t kHeader = 12;

std::uint16_t get16(const std::uint8_t* p) { return std::uint16_t((p[0] << 8) | p[1]); }
void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = std::uint8_t(v >> 8);
  p[1] = std::uint8_t(v);
}

std::vector<std::uint8_t> framed(std::span<const std::uint8_t> message) {
  std::vector<std::uint8_t> out(2 + message.size());
  put16(out.data(), std::uint16_t(message.size()));
  std::copy(message.begin(), message.end(), out.begin() + 2);
  return out;
}

}  // namespace

tunnel::Result<udp::endpoint> first_nameserver(const std::string& resolv_conf) {
  std::ifstream in(resolv_conf);
  if (!in) {
    return tunnel::Problem{std::make_error_code(std::errc::no_such_file_or_directory),
                           "cannot read " + resolv_conf};
  }
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value) || key != "nameserver") continue;
    unsigned long port = 53;
    if (auto hash = value.find('#'); hash != std::string::npos) {
      try {
        port = std::stoul(value.substr(hash + 1));
      } catch (const std::exception&) {
        port = 0;
      }
      value.resize(hash);
    }
    error_code ec;
    auto address = asio::ip::make_address(value, ec);
    if (!ec && port > 0 && port <= 65535) return udp::endpoint(address, std::uint16_t(port));
  }
  return tunnel::Problem{std::make_error_code(std::errc::invalid_argument),
                         "no usable nameserver line in " + resolv_conf};
}

std::optional<std::size_t> question_end(std::span<const std::uint8_t> query) {
  std::size_t pos = kHeader;
  std::size_t name_size = 0;
  while (true) {
    if (pos >= query.size()) return std::nullopt;
    const std::uint8_t len = query[pos];
    if (len == 0) break;
    if (len > 63) return std::nullopt;  // a pointer or a reserved label type: not in a query
    name_size += len + 1;
    pos += len + 1;
    if (name_size > 254) return std::nullopt;
  }
  pos += 1 + 4;  // root label, type, class
  if (pos > query.size()) return std::nullopt;
  return pos;
}

std::vector<std::uint8_t> servfail_for(std::span<const std::uint8_t> query, std::size_t qend) {
  std::vector<std::uint8_t> out(query.begin(), query.begin() + std::ptrdiff_t(qend));
  out[2] = std::uint8_t(0x80 | (query[2] & 0x79));  // QR, the query's opcode and RD
  out[3] = 0x80 | 2;                                // RA, SERVFAIL
  put16(&out[4], 1);
  for (std::size_t i = 6; i < kHeader; ++i) out[i] = 0;
  return out;
}

struct DnsForwarder::Pending {
  std::uint16_t client_id = 0;
  std::uint64_t seq = 0;
  std::vector<std::uint8_t> query;  ///< carries our id
  std::size_t question_end = 0;
  std::shared_ptr<asio::steady_timer> timer;
  std::shared_ptr<asio::ip::tcp::socket> tcp;  ///< set once the answer came back truncated
};

DnsForwarder::DnsForwarder(tcp::socket stream, udp::endpoint nameserver,
                           DnsForwarderOptions options)
    : stream_(std::move(stream)),
      udp_(stream_.get_executor()),
      nameserver_(nameserver),
      options_(options),
      wake_writer_(stream_.get_executor()),
      room_(stream_.get_executor()),
      id_seed_(std::uint16_t(std::random_device{}())) {}

DnsForwarder::~DnsForwarder() = default;

tunnel::Result<void> DnsForwarder::open() {
  error_code ec;
  udp_.open(nameserver_.protocol(), ec);
  // Connected: the kernel drops datagrams from anyone but the nameserver.
  if (!ec) udp_.connect(nameserver_, ec);
  if (!ec) udp_.non_blocking(true, ec);
  if (ec) {
    return tunnel::Problem{ec, "cannot reach the nameserver " + nameserver_.address().to_string() +
                                   ": " + ec.message()};
  }
  return {};
}

// Every coroutine is started from a lambda holding a strong reference: the forwarder lives
// as long as any of them runs.
void DnsForwarder::start() {
  auto self = shared_from_this();
  auto ex = stream_.get_executor();
  asio::co_spawn(
      ex, [self]() { return self->read_queries(); }, asio::detached);
  asio::co_spawn(
      ex, [self]() { return self->read_udp(); }, asio::detached);
  asio::co_spawn(
      ex, [self]() { return self->write_answers(); }, asio::detached);
}

void DnsForwarder::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& [id, p] : pending_) {
    p->timer->cancel();
    if (p->tcp) p->tcp->close();
  }
  pending_.clear();
  out_.clear();
  error_code ec;
  stream_.close(ec);
  udp_.close(ec);
  wake_writer_.cancel();
  room_.cancel();
}

void DnsForwarder::abort(const char* why) {
  spdlog::info("dns stream: {}; resetting it", why);
  error_code ec;
  stream_.set_option(asio::socket_base::linger(true, 0), ec);
  stop();
}

asio::awaitable<void> DnsForwarder::read_queries() {
  std::array<std::uint8_t, 2> size{};
  while (!stopped_) {
    while (in_flight() >= options_.max_in_flight && !stopped_) {
      room_.expires_at(asio::steady_timer::time_point::max());
      co_await room_.async_wait(kTuple);
    }
    if (stopped_) co_return;
    auto [ec, n] = co_await asio::async_read(stream_, asio::buffer(size), kTuple);
    if (ec == asio::error::eof && !stopped_) {
      reading_done_ = true;  // half-closed: answer what is in flight, then close
      wake_writer_.cancel();
      co_return;
    }
    if (ec) co_return stop();
    std::vector<std::uint8_t> query(get16(size.data()));
    auto [rec, m] = co_await asio::async_read(stream_, asio::buffer(query), kTuple);
    if (rec == asio::error::eof) co_return abort("the stream ended inside a message");
    if (rec) co_return stop();
    if (!accept_query(std::move(query))) co_return abort("malformed query");
  }
}

bool DnsForwarder::accept_query(std::vector<std::uint8_t> query) {
  if (query.size() < kHeader || (query[2] & 0x80) || get16(&query[4]) != 1) return false;
  auto qend = question_end(query);
  if (!qend) return false;
  // Ids of our own: queries from one stream may share ids, and the nameserver sees one client.
  std::uint16_t id;
  do {
    id_seed_ = std::uint16_t(id_seed_ * 25173 + 13849) ^ std::uint16_t(std::random_device{}());
    id = id_seed_;
  } while (pending_.count(id));
  auto p = std::make_unique<Pending>();
  p->client_id = get16(query.data());
  p->seq = ++seq_;
  p->question_end = *qend;
  put16(query.data(), id);
  p->query = std::move(query);
  p->timer = std::make_shared<asio::steady_timer>(stream_.get_executor());
  send_udp(*p);
  auto seq = p->seq;
  auto timer = p->timer;
  pending_.emplace(id, std::move(p));
  asio::co_spawn(
      stream_.get_executor(),
      [self = shared_from_this(), id, seq, timer] { return self->watch(id, seq, timer); },
      asio::detached);
  return true;
}

void DnsForwarder::send_udp(const Pending& p) {
  // Non-blocking: a full socket buffer loses this datagram, and the retransmit covers it.
  error_code ec;
  udp_.send(asio::buffer(p.query), 0, ec);
  if (ec)
    spdlog::debug("dns: send to {} failed: {}", nameserver_.address().to_string(), ec.message());
}

asio::awaitable<void> DnsForwarder::watch(std::uint16_t id, std::uint64_t seq,
                                          std::shared_ptr<asio::steady_timer> timer) {
  timer->expires_after(options_.retransmit);
  co_await timer->async_wait(kTuple);
  Pending* p = find(id, seq);
  if (!p) co_return;
  if (!p->tcp) send_udp(*p);
  timer->expires_after(options_.timeout - options_.retransmit);
  co_await timer->async_wait(kTuple);
  if ((p = find(id, seq))) {
    spdlog::debug("dns: no answer from {} within {} ms", nameserver_.address().to_string(),
                  options_.timeout.count());
    auto answer = servfail_for(p->query, p->question_end);
    complete(id, answer);
  }
}

DnsForwarder::Pending* DnsForwarder::find(std::uint16_t id, std::uint64_t seq) {
  auto it = pending_.find(id);
  return it != pending_.end() && it->second->seq == seq ? it->second.get() : nullptr;
}

asio::awaitable<void> DnsForwarder::read_udp() {
  std::vector<std::uint8_t> buffer(65536);
  while (!stopped_) {
    auto [ec, n] = co_await udp_.async_receive(asio::buffer(buffer), kTuple);
    if (stopped_ || ec == asio::error::operation_aborted) co_return;
    // ECONNREFUSED (ICMP from a closed port) and the like: the timeout answers for it.
    if (ec) continue;
    on_udp_answer(std::span<const std::uint8_t>(buffer.data(), n));
  }
}

void DnsForwarder::on_udp_answer(std::span<const std::uint8_t> answer) {
  if (answer.size() < kHeader || !(answer[2] & 0x80)) return;
  const auto id = get16(answer.data());
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second->tcp) return;
  Pending& p = *it->second;
  // Only the answer to this question counts (a late answer to an id reused since is dropped).
  if (answer.size() < p.question_end || get16(&answer[4]) != 1) return;
  for (std::size_t i = kHeader; i < p.question_end; ++i) {
    if (text::ascii_lower(char(answer[i])) != text::ascii_lower(char(p.query[i]))) return;
  }
  if (answer[2] & 0x02) {  // TC: the whole answer only fits over TCP
    p.tcp = std::make_shared<tcp::socket>(stream_.get_executor());
    asio::co_spawn(
        stream_.get_executor(),
        [self = shared_from_this(), id, seq = p.seq, socket = p.tcp, query = framed(p.query)] {
          return self->ask_over_tcp(id, seq, socket, query);
        },
        asio::detached);
    return;
  }
  complete(id, answer);
}

// `socket` is closed by complete() or stop(), which ends the waits below.
asio::awaitable<void> DnsForwarder::ask_over_tcp(std::uint16_t id, std::uint64_t seq,
                                                 std::shared_ptr<tcp::socket> socket,
                                                 std::vector<std::uint8_t> query) {
  tcp::endpoint server(nameserver_.address(), nameserver_.port());
  auto [ec] = co_await socket->async_connect(server, kTuple);
  if (!ec)
    std::tie(ec, std::ignore) = co_await asio::async_write(*socket, asio::buffer(query), kTuple);
  std::array<std::uint8_t, 2> size{};
  if (!ec)
    std::tie(ec, std::ignore) = co_await asio::async_read(*socket, asio::buffer(size), kTuple);
  std::vector<std::uint8_t> answer(get16(size.data()));
  if (!ec)
    std::tie(ec, std::ignore) = co_await asio::async_read(*socket, asio::buffer(answer), kTuple);
  Pending* p = find(id, seq);
  if (!p) co_return;
  if (ec || answer.size() < kHeader || get16(answer.data()) != id) {
    spdlog::debug("dns: TCP retry to {} failed: {}", server.address().to_string(),
                  ec ? ec.message() : "bad answer");
    auto failure = servfail_for(p->query, p->question_end);
    co_return complete(id, failure);
  }
  complete(id, answer);
}

void DnsForwarder::complete(std::uint16_t id, std::span<const std::uint8_t> answer) {
  auto it = pending_.find(id);
  if (it == pending_.end() || answer.size() > 0xFFFF) return;
  auto out = framed(answer);
  put16(&out[2], it->second->client_id);
  it->second->timer->cancel();
  error_code ec;
  if (it->second->tcp) it->second->tcp->close(ec);
  pending_.erase(it);
  out_.push_back(std::move(out));
  wake_writer_.cancel();
}

asio::awaitable<void> DnsForwarder::write_answers() {
  while (!stopped_) {
    if (out_.empty()) {
      if (reading_done_ && pending_.empty()) {
        error_code ec;
        stream_.shutdown(tcp::socket::shutdown_send, ec);
        co_return stop();
      }
      wake_writer_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_writer_.async_wait(kTuple);
      continue;
    }
    auto packet = std::move(out_.front());
    out_.pop_front();
    room_.cancel();
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(packet), kTuple);
    if (ec) co_return stop();
  }
}

}  // namespace lpk::agent
