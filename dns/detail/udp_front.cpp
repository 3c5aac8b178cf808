#include "dns/detail/udp_front.hpp"

namespace lpk::dns::detail {
namespace asio = boost::asio;

UdpFront::UdpFront(asio::io_context& io, std::shared_ptr<Engine> engine)
    : socket_(io), engine_(std::move(engine)), in_(kBatch) {
  for (auto& o : out_) o.reserve(4096);
}

void UdpFront::bind(const asio::ip::udp::endpoint& ep) {
  socket_.open(ep.protocol());
  socket_.bind(ep);
  socket_.non_blocking(true);
  boost::system::error_code ignored;
  socket_.set_option(asio::socket_base::receive_buffer_size(4 << 20), ignored);
}

void UdpFront::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void UdpFront::wait() {
  socket_.async_wait(asio::socket_base::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       if (ec || self->stopped_) return;
                       self->drain();
                       self->wait();
                     });
}

Engine::Reply UdpFront::make_reply(const sockaddr_storage& peer, socklen_t len) {
  return [self = weak_from_this(), peer, len](std::vector<std::uint8_t>& response) {
    auto s = self.lock();
    if (!s || s->stopped_) return;
    // Non-blocking: a full socket buffer drops the answer, as it would drop a query.
    ::sendto(s->socket_.native_handle(), response.data(), response.size(), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&peer), len);
  };
}

void UdpFront::drain() {
  const int fd = socket_.native_handle();
  // Bounded rounds so that TCP clients and timers get their turn under a flood.
  for (int round = 0; round < 16 && !stopped_; ++round) {
    for (int i = 0; i < kBatch; ++i) {
      in_iov_[i] = {in_[i].data(), kMaxQuery};
      in_msgs_[i].msg_hdr = {};
      in_msgs_[i].msg_hdr.msg_name = &peers_[i];
      in_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      in_msgs_[i].msg_hdr.msg_iov = &in_iov_[i];
      in_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(fd, in_msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    int m = 0;
    for (int i = 0; i < n; ++i) {
      const std::span<const std::uint8_t> packet(in_[i].data(), in_msgs_[i].msg_len);
      const auto& peer = peers_[i];
      const socklen_t len = in_msgs_[i].msg_hdr.msg_namelen;
      auto result =
          engine_->handle(packet, true, query_, out_[m], [&] { return make_reply(peer, len); });
      if (result != Engine::Result::kReply) continue;
      out_iov_[m] = {out_[m].data(), out_[m].size()};
      out_msgs_[m].msg_hdr = {};
      out_msgs_[m].msg_hdr.msg_name = &peers_[i];
      out_msgs_[m].msg_hdr.msg_namelen = len;
      out_msgs_[m].msg_hdr.msg_iov = &out_iov_[m];
      out_msgs_[m].msg_hdr.msg_iovlen = 1;
      ++m;
    }
    for (int sent = 0; sent < m;) {
      const int r = ::sendmmsg(fd, out_msgs_.data() + sent, m - sent, MSG_DONTWAIT);
      if (r <= 0) break;  // full send buffer: drop the rest, clients retry
      sent += r;
    }
    if (n < kBatch) return;
  }
}

}  // namespace lpk::dns::detail
