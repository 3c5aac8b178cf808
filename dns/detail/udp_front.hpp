#pragma once
// UDP side of the server: waits for readability, then drains the socket in recvmmsg batches,
// answers what it can at once and sends those answers with one sendmmsg per batch.

#include <sys/socket.h>

#include <array>
#include <boost/asio/ip/udp.hpp>
#include <memory>
#include <vector>

#include "dns/detail/engine.hpp"

namespace lpk::dns::detail {

class UdpFront : public std::enable_shared_from_this<UdpFront> {
 public:
  UdpFront(boost::asio::io_context& io, std::shared_ptr<Engine> engine);
  void bind(const boost::asio::ip::udp::endpoint& ep);
  void start() { wait(); }
  void stop();
  boost::asio::ip::udp::endpoint local_endpoint() const { return socket_.local_endpoint(); }

 private:
  static constexpr int kBatch = 32;
  static constexpr std::size_t kMaxQuery = 4096;
  void wait();
  void drain();
  Engine::Reply make_reply(const sockaddr_storage& peer, socklen_t len);

  boost::asio::ip::udp::socket socket_;
  std::shared_ptr<Engine> engine_;
  Query query_;
  std::vector<std::array<std::uint8_t, kMaxQuery>> in_;
  std::array<sockaddr_storage, kBatch> peers_{};
  std::array<iovec, kBatch> in_iov_{}, out_iov_{};
  std::array<mmsghdr, kBatch> in_msgs_{}, out_msgs_{};
  std::array<std::vector<std::uint8_t>, kBatch> out_;
  bool stopped_ = false;
};

}  // namespace lpk::dns::detail
