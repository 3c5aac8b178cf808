#include "dns/server.hpp"

#include "dns/detail/engine.hpp"
#include "dns/detail/tcp_front.hpp"
#include "dns/detail/udp_front.hpp"

namespace lpk::dns {
namespace asio = boost::asio;

Server::Server(asio::io_context& io, ServerOptions opts, std::shared_ptr<const NameTable> table,
               Upstream* upstream, ClusterResolver* cluster)
    : io_(io),
      opts_(std::move(opts)),
      engine_(std::make_shared<detail::Engine>(io, std::move(table), upstream, cluster,
                                               opts_.cluster_timeout)) {}

Server::~Server() { stop(); }

void Server::start() {
  detail::TcpLimits limits{opts_.tcp_idle_timeout, opts_.max_tcp_connections,
                           opts_.max_tcp_in_flight};
  // With port 0 the kernel picks the UDP port; TCP must then get the same one, which can be
  // taken already: try a few times.
  for (int attempt = 0;; ++attempt) {
    udp_ = std::make_shared<detail::UdpFront>(io_, engine_);
    tcp_ = std::make_shared<detail::TcpFront>(io_, engine_, limits);
    udp_->bind({opts_.address, opts_.port});
    try {
      tcp_->bind({opts_.address, udp_->local_endpoint().port()});
      break;
    } catch (const boost::system::system_error&) {
      udp_->stop();
      if (opts_.port != 0 || attempt == 20) throw;
    }
  }
  udp_->start();
  tcp_->start();
}

void Server::set_table(std::shared_ptr<const NameTable> table) {
  engine_->set_table(std::move(table));
}

std::shared_ptr<const NameTable> Server::table() const { return engine_->table(); }

asio::ip::udp::endpoint Server::local_endpoint() const { return udp_->local_endpoint(); }

const detail::EngineStats& Server::stats() const { return engine_->stats(); }

void Server::stop() {
  if (udp_) udp_->stop();
  if (tcp_) tcp_->stop();
}

}  // namespace lpk::dns
