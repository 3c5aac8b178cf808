#include "dns/detail/tcp_front.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "dns/detail/wire.hpp"

namespace lpk::dns::detail {
namespace asio = boost::asio;
using asio::as_tuple;
using asio::awaitable;
using asio::use_awaitable;

TcpConnection::TcpConnection(asio::ip::tcp::socket socket, std::shared_ptr<Engine> engine,
                             const TcpLimits& limits)
    : socket_(std::move(socket)),
      engine_(std::move(engine)),
      limits_(limits),
      idle_timer_(socket_.get_executor()),
      resume_(socket_.get_executor()) {}

void TcpConnection::start() {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  touch();
  asio::co_spawn(socket_.get_executor(), read_queries(), asio::detached);
  asio::co_spawn(socket_.get_executor(), watch_idle(), asio::detached);
}

void TcpConnection::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  idle_timer_.cancel();
  resume_.cancel();
}

awaitable<void> TcpConnection::read_queries() {
  auto self = shared_from_this();
  std::uint8_t prefix[2];
  std::vector<std::uint8_t> query, out;
  Query scratch;
  while (!stopped_) {
    auto [ec, n] =
        co_await asio::async_read(socket_, asio::buffer(prefix), as_tuple(use_awaitable));
    if (ec) break;
    const std::size_t size = get16(prefix);
    if (size > kMaxQuery) break;  // oversized: end this connection only
    query.resize(size);
    std::tie(ec, n) =
        co_await asio::async_read(socket_, asio::buffer(query), as_tuple(use_awaitable));
    if (ec) break;
    touch();
    auto result = engine_->handle(query, false, scratch, out, [&] {
      return [weak = weak_from_this()](std::vector<std::uint8_t>& response) {
        auto c = weak.lock();
        if (!c || c->stopped_) return;
        --c->in_flight_;
        c->resume_.cancel();
        c->send(response);
      };
    });
    if (result == Engine::Result::kReply) send(out);
    if (result == Engine::Result::kLater) ++in_flight_;
    while ((in_flight_ >= static_cast<std::ptrdiff_t>(limits_.max_in_flight) ||
            queue_.size() >= kMaxQueued) &&
           !stopped_) {
      resume_.expires_after(std::chrono::hours(1));
      co_await resume_.async_wait(as_tuple(use_awaitable));
    }
  }
  // Let answers still in flight go out; the watchdog closes the connection once idle.
  if (in_flight_ == 0 && queue_.empty()) stop();
}

awaitable<void> TcpConnection::watch_idle() {
  auto self = shared_from_this();
  while (!stopped_) {
    idle_timer_.expires_at(deadline_);
    co_await idle_timer_.async_wait(as_tuple(use_awaitable));
    if (stopped_) break;
    // Close when the deadline passed and we are not merely waiting for an upstream answer;
    // a client that does not read its answers (writing_ stuck) is closed too.
    if (std::chrono::steady_clock::now() >= deadline_ && (in_flight_ == 0 || writing_ != 0)) {
      stop();
    } else if (std::chrono::steady_clock::now() >= deadline_) {
      touch();
    }
  }
}

void TcpConnection::send(const std::vector<std::uint8_t>& message) {
  if (stopped_ || message.size() > 0xFFFF) return;
  auto& framed = queue_.emplace_back(message.size() + 2);
  put16(framed.data(), static_cast<std::uint16_t>(message.size()));
  std::copy(message.begin(), message.end(), framed.begin() + 2);
  if (writing_ == 0) write_some();
}

void TcpConnection::write_some() {
  std::vector<asio::const_buffer> buffers;
  for (const auto& m : queue_) buffers.push_back(asio::buffer(m));
  writing_ = queue_.size();
  asio::async_write(socket_, buffers,
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      if (ec) return self->stop();
                      self->queue_.erase(self->queue_.begin(),
                                         self->queue_.begin() + static_cast<long>(self->writing_));
                      self->writing_ = 0;
                      self->touch();
                      self->resume_.cancel();
                      if (!self->queue_.empty()) self->write_some();
                    });
}

TcpFront::TcpFront(asio::io_context& io, std::shared_ptr<Engine> engine, TcpLimits limits)
    : acceptor_(io), engine_(std::move(engine)), limits_(limits) {}

void TcpFront::bind(const asio::ip::tcp::endpoint& ep) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
}

void TcpFront::start() { asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached); }

void TcpFront::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& w : connections_)
    if (auto c = w.lock()) c->stop();
  connections_.clear();
}

awaitable<void> TcpFront::accept_loop() {
  auto self = shared_from_this();
  while (!stopped_) {
    auto [ec, socket] = co_await acceptor_.async_accept(as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted || stopped_) break;
    if (ec) continue;  // EMFILE and friends: keep accepting
    connections_.remove_if([](const auto& w) {
      auto c = w.lock();
      return !c || c->stopped();
    });
    if (connections_.size() >= limits_.max_connections) {
      // Make room for the newcomer: the oldest connection is the likeliest to be idle.
      if (auto oldest = connections_.front().lock()) oldest->stop();
      connections_.pop_front();
    }
    auto c = std::make_shared<TcpConnection>(std::move(socket), engine_, limits_);
    connections_.push_back(c);
    c->start();
  }
}

}  // namespace lpk::dns::detail
