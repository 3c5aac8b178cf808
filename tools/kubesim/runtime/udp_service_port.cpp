#include "tools/kubesim/runtime/udp_service_port.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "tools/kubesim/coro.hpp"
#include "tools/kubesim/runtime/netns.hpp"

namespace lpk::kubesim {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::udp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::size_t kMaxDatagram = 65536;
int family_of(const udp::endpoint& e) { return e.address().is_v6() ? AF_INET6 : AF_INET; }
}  // namespace

struct UdpServicePort::Flow {
  udp::endpoint target;
  udp::socket upstream;
  asio::steady_timer idle;
  Clock::time_point last = Clock::now();
  explicit Flow(asio::io_context& io) : upstream(io), idle(io) {}
};

std::shared_ptr<UdpServicePort> UdpServicePort::open(asio::io_context& io,
                                                     const udp::endpoint& vip, PickEndpoint pick,
                                                     std::string& error) {
  auto port = std::make_shared<UdpServicePort>(io, std::move(pick));
  int fd = socket_in_netns(node_netns(), family_of(vip), SOCK_DGRAM);
  error_code ec;
  if (fd < 0) ec = error_code(errno, boost::system::system_category());
  if (!ec) port->socket_.assign(vip.protocol(), fd, ec);
  if (!ec) port->socket_.set_option(udp::socket::reuse_address(true), ec);
  if (!ec) port->socket_.bind(vip, ec);
  if (!ec) port->socket_.non_blocking(true, ec);
  if (ec) {
    error = ec.message();
    return nullptr;
  }
  return port;
}

UdpServicePort::UdpServicePort(asio::io_context& io, PickEndpoint pick)
    : io_(io), socket_(io), pick_(std::move(pick)) {}

void UdpServicePort::start() {
  asio::co_spawn(io_, [self = shared_from_this()] { return self->receive_loop(); },
                 asio::detached);
}

void UdpServicePort::stop() {
  if (std::exchange(stopped_, true)) return;
  error_code ec;
  socket_.close(ec);
  for (auto& [client, flow] : flows_) {
    flow->upstream.close(ec);
    flow->idle.cancel();
  }
  flows_.clear();
}

void UdpServicePort::keep_flows_to(const std::set<udp::endpoint>& endpoints) {
  for (auto it = flows_.begin(); it != flows_.end();) {
    if (endpoints.count(it->second->target)) {
      ++it;
      continue;
    }
    error_code ec;
    it->second->upstream.close(ec);  // its relay ends; the next datagram opens a new flow
    it->second->idle.cancel();
    it = flows_.erase(it);
  }
}

awaitable<void> UdpServicePort::receive_loop() {
  std::vector<char> buffer(kMaxDatagram);
  udp::endpoint client;
  while (!stopped_) {
    auto [ec, n] = co_await socket_.async_receive_from(asio::buffer(buffer), client, kTuple);
    if (stopped_ || ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // an ICMP error for a reply: the port goes on
    auto it = flows_.find(client);
    auto flow = it != flows_.end() ? it->second : open_flow(client);
    if (!flow) continue;  // no ready endpoint: dropped, as with no DNAT rule
    flow->last = Clock::now();
    error_code sec;
    flow->upstream.send(asio::buffer(buffer.data(), n), 0, sec);
  }
}

std::shared_ptr<UdpServicePort::Flow> UdpServicePort::open_flow(const udp::endpoint& client) {
  auto target = pick_ ? pick_() : std::nullopt;
  if (!target) return nullptr;
  auto flow = std::make_shared<Flow>(io_);
  flow->target = *target;
  int fd = socket_in_netns(node_netns(), family_of(*target), SOCK_DGRAM);
  if (fd < 0) return nullptr;
  error_code ec;
  flow->upstream.assign(target->protocol(), fd, ec);
  if (!ec) flow->upstream.connect(*target, ec);
  if (!ec) flow->upstream.non_blocking(true, ec);
  if (ec) return nullptr;
  flows_.emplace(client, flow);
  using namespace asio::experimental::awaitable_operators;
  asio::co_spawn(
      io_,
      [self = shared_from_this(), client, flow]() -> awaitable<void> {
        co_await (self->relay_replies(client, flow) || self->expire(flow));
        error_code cec;
        flow->upstream.close(cec);
        if (auto it = self->flows_.find(client); it != self->flows_.end() && it->second == flow) {
          self->flows_.erase(it);
        }
      },
      asio::detached);
  return flow;
}

awaitable<void> UdpServicePort::relay_replies(udp::endpoint client, std::shared_ptr<Flow> flow) {
  std::vector<char> buffer(kMaxDatagram);
  for (;;) {
    auto [ec, n] = co_await flow->upstream.async_receive(asio::buffer(buffer), kTuple);
    if (ec == asio::error::connection_refused) continue;  // ICMP for an earlier datagram
    if (ec || stopped_) co_return;
    flow->last = Clock::now();
    error_code sec;
    socket_.send_to(asio::buffer(buffer.data(), n), client, 0, sec);
  }
}

awaitable<void> UdpServicePort::expire(std::shared_ptr<Flow> flow) {
  for (;;) {
    const auto deadline = flow->last + kIdleTimeout;
    if (Clock::now() >= deadline) co_return;
    flow->idle.expires_at(deadline);
    auto [ec] = co_await flow->idle.async_wait(kTuple);
    if (ec) co_return;
  }
}

}  // namespace lpk::kubesim
