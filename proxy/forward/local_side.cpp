#include "proxy/forward/local_side.hpp"

#include <csignal>

#include "proxy/tunnel/listen.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

LocalSide::LocalSide(asio::ip::network_v4 pool)
    : pool_(pool), forwarder_(io_.get_executor(), [this](tcp::socket s, tunnel::Target t) {
        outbound()(std::move(s), std::move(t));
      }) {}

LocalSide::~LocalSide() = default;

std::shared_ptr<tunnel::TunnelClient> LocalSide::add_tunnel(
    tunnel::LinkDialer dialer, tunnel::SessionOptions options,
    std::shared_ptr<tunnel::Dialer> inbound) {
  auto tunnel = std::make_shared<tunnel::TunnelClient>(io_.get_executor(), std::move(dialer),
                                                       std::move(options), std::move(inbound));
  tunnels_.push_back(tunnel);
  if (running_ && !stopping_) tunnel->start();
  return tunnel;
}

void LocalSide::remove_tunnel(const std::shared_ptr<tunnel::TunnelClient>& tunnel) {
  tunnel->stop();
  std::erase(tunnels_, tunnel);
}

std::shared_ptr<tunnel::TunnelClient> LocalSide::pick_outbound() const {
  std::shared_ptr<tunnel::TunnelClient> best;
  std::uint64_t fewest = 0;
  for (const auto& t : tunnels_) {
    auto session = t->session();
    if (!session || !session->accepting_streams()) continue;
    auto streams = session->stats().streams_active;
    if (!best || streams < fewest) {
      best = t;
      fewest = streams;
    }
  }
  if (!best && !tunnels_.empty()) best = tunnels_.front();
  return best;
}

OpenStream LocalSide::outbound() {
  return [this](tcp::socket socket, tunnel::Target target) {
    if (auto tunnel = pick_outbound()) tunnel->open(std::move(socket), std::move(target));
    // else the socket closes: no agent could carry it
  };
}

tunnel::Result<void> LocalSide::start_dns(const StubDnsOptions& options,
                                          const dns::TableSpec& table,
                                          dns::ClusterResolver* cluster) {
  try {
    dns_ = std::make_unique<StubDns>(io_, options, table, cluster);
  } catch (const boost::system::system_error& e) {
    return tunnel::Problem{e.code(), "cannot start the stub DNS on " +
                                         tunnel::endpoint_text({options.listen.address(),
                                                                options.listen.port()}) +
                                         ": " + e.code().message()};
  }
  return {};
}

void LocalSide::wait_for_signal() {
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    if (on_signal) {
      on_signal(signal);
    } else {
      stop(0);
    }
    if (!stopping_) wait_for_signal();
  });
}

int LocalSide::run() {
  running_ = true;
  wait_for_signal();
  forwarder_.start();
  for (auto& t : tunnels_) t->start();
  io_.run();
  return exit_code_;
}

void LocalSide::stop(int exit_code) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = exit_code;
  if (on_stop) on_stop();
  if (dns_) dns_->stop();
  forwarder_.stop();
  for (auto& t : tunnels_) t->stop();
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  grace_.expires_after(300ms);  // let the GOAWAYs go out
  grace_.async_wait([this](boost::system::error_code) { io_.stop(); });
}

}  // namespace lpk::proxy
