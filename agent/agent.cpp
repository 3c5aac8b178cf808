#include "agent/agent.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/tunnel/dial.hpp"
#include "proxy/tunnel/listen.hpp"

namespace lpk::agent {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

/// Streams the proxy opens go to cluster targets, resolved with the pod's own resolver, or
/// to the agent's own services.
class ClusterDialer final : public tunnel::Dialer {
 public:
  ClusterDialer(std::chrono::milliseconds timeout, ServiceOptions services)
      : timeout_(timeout), services_(std::move(services)) {}
  asio::awaitable<tunnel::DialResult> dial(const tunnel::Target& target) override {
    // The agent services are streams; a UDP flow to such a name is resolved (and not found).
    if (is_service_target(target) && !target.datagram) {
      co_return co_await dial_service(target, services_);
    }
    co_return co_await tunnel::resolve_and_dial(target, timeout_);
  }

 private:
  std::chrono::milliseconds timeout_;
  ServiceOptions services_;
};

}  // namespace

Agent::Agent(asio::any_io_executor executor, AgentOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      dialer_(std::make_shared<ClusterDialer>(options_.connect_timeout, options_.services)),
      tunnel_acceptor_(executor_),
      session_up_(executor_, tunnel::Clock::time_point::max()),
      resume_grace_(executor_) {
  options_.session.role = tunnel::Role::agent;
}

tunnel::Result<void> Agent::bind(std::vector<std::string>& errors) {
  auto tunnel = tunnel::open_listener(executor_, options_.tunnel_endpoint,
                                      {.in_use = "choose another --listen port"});
  if (!tunnel) return tunnel.error();
  tunnel_acceptor_ = std::move(*tunnel);
  const tunnel::BindHints serve_hints{
      .in_use = "stop the process holding it or drop it from --serve",
      .privileged = "a container needs to run as root or with CAP_NET_BIND_SERVICE",
      .not_here = "check --serve-address"};
  for (auto port : options_.serve_ports) {
    auto acceptor = tunnel::open_listener(executor_, {options_.serve_address, port}, serve_hints);
    if (!acceptor && acceptor.error().code == boost::asio::error::address_family_not_supported &&
        options_.serve_address == asio::ip::address_v6::any()) {
      // A kernel without IPv6 (ipv6.disable=1): every IPv4 address is what "every" means here.
      acceptor = tunnel::open_listener(executor_, {asio::ip::address_v4::any(), port}, serve_hints);
    }
    if (!acceptor) {
      errors.push_back(acceptor.error().message);
      continue;
    }
    inbound_acceptors_.push_back(std::make_unique<tcp::acceptor>(std::move(*acceptor)));
    inbound_ports_.push_back(port);
  }
  return {};
}

tcp::endpoint Agent::tunnel_endpoint() const { return tunnel_acceptor_.local_endpoint(); }

std::vector<tcp::endpoint> Agent::serve_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& a : inbound_acceptors_) out.push_back(a->local_endpoint());
  return out;
}

void Agent::start() {
  asio::co_spawn(executor_, accept_links(), asio::detached);
  for (std::size_t i = 0; i < inbound_acceptors_.size(); ++i) {
    asio::co_spawn(executor_, accept_inbound(*inbound_acceptors_[i], inbound_ports_[i]),
                   asio::detached);
  }
}

void Agent::stop() {
  if (stopped_) return;
  stopped_ = true;
  error_code ec;
  tunnel_acceptor_.close(ec);
  for (auto& a : inbound_acceptors_) a->close(ec);
  session_up_.cancel();
  resume_grace_.cancel();
  if (current_) current_->stop(tunnel::GoAwayCode::normal, "agent shutting down");
}

asio::awaitable<void> Agent::accept_links() {
  while (!stopped_) {
    auto [ec, socket] = co_await tunnel_acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || stopped_) co_return;
    if (ec) {
      spdlog::warn("tunnel accept failed: {}", ec.message());
      continue;
    }
    asio::co_spawn(executor_, serve_link(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Agent::serve_link(tcp::socket socket) {
  auto link = std::make_unique<tunnel::TcpLink>(std::move(socket));
  auto peer = link->describe();
  // A proxy that lost its link comes back with the same session id and asks to resume it.
  auto holds = [this](const tunnel::Hello& proxy) {
    return current_ && !current_->stopped() && current_->resumable() &&
           current_->id() == proxy.session_id;
  };
  auto hello = co_await tunnel::Session::exchange_hellos(*link, options_.session, {}, false, holds);
  if (!hello) {
    spdlog::warn("tunnel from {} refused: {}", peer, hello.error().message());
    co_return;
  }
  if (stopped_) {
    link->close();
    co_return;
  }
  std::shared_ptr<tunnel::Session> session;
  // Asked again: the session may have ended or been replaced during the hello.
  if (hello->local.resume && holds(hello->peer)) {
    session = current_;
    spdlog::info("tunnel {} resumes on a new link from {}", session->id_text(), peer);
    co_await session->take_over_link(std::move(link));
    if (session->stopped() || current_ != session) co_return;
    session->on_resumed = [this] { session_up_.cancel(); };
  } else {
    session = std::make_shared<tunnel::Session>(std::move(link), options_.session, dialer_,
                                                hello->local, hello->peer);
    if (current_) current_->stop(tunnel::GoAwayCode::replaced, "a newer lpk-proxy link took over");
    current_ = session;
    session_up_.cancel();  // wakes the inbound connections waiting for a proxy
    spdlog::info("tunnel {} up from {}", session->id_text(), peer);
  }
  auto why = co_await session->run();
  if (current_ != session) co_return;
  if (session->detached()) {
    spdlog::info("tunnel {} from {}: link lost ({}); its streams wait {} s for the proxy",
                 session->id_text(), peer, why.message(),
                 options_.session.resume_grace.count() / 1000.0);
    asio::co_spawn(executor_, expire_detached(session, session->link_generation()),
                   asio::detached);
    co_return;
  }
  spdlog::info("tunnel {} from {} ended: {}", session->id_text(), peer, why.message());
  current_.reset();
}

asio::awaitable<void> Agent::expire_detached(std::shared_ptr<tunnel::Session> session,
                                             std::uint64_t generation) {
  resume_grace_.expires_after(options_.session.resume_grace);
  co_await resume_grace_.async_wait(asio::as_tuple(asio::use_awaitable));
  // Resumed meanwhile (a newer link), or replaced, or the agent stops: not ours to end.
  if (!session->detached() || session->link_generation() != generation || current_ != session) {
    co_return;
  }
  spdlog::warn("tunnel {}: the proxy did not come back within {} s; its {} streams are reset",
               session->id_text(), options_.session.resume_grace.count() / 1000.0,
               session->stats().streams_active);
  session->stop(tunnel::GoAwayCode::normal, "resume grace expired");
  current_.reset();
}

asio::awaitable<void> Agent::accept_inbound(tcp::acceptor& acceptor, std::uint16_t port) {
  while (!stopped_) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || stopped_) co_return;
    if (ec) {
      spdlog::warn("accept on port {} failed: {}", port, ec.message());
      continue;
    }
    if (current_ && current_->accepting_streams()) {
      current_->open_stream(std::move(socket), {tunnel::Target::Kind::inbound, {}, port});
    } else {
      asio::co_spawn(executor_, open_inbound(std::move(socket), port), asio::detached);
    }
  }
}

asio::awaitable<void> Agent::open_inbound(tcp::socket socket, std::uint16_t port) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer deadline(executor_, options_.connect_timeout);
  auto up = [this] { return current_ && current_->accepting_streams(); };
  while (!stopped_ && !up() && deadline.expiry() > tunnel::Clock::now()) {
    co_await (session_up_.async_wait(asio::as_tuple(asio::use_awaitable)) ||
              deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
  }
  if (!stopped_ && up()) {
    current_->open_stream(std::move(socket), {tunnel::Target::Kind::inbound, {}, port});
    co_return;
  }
  // Nobody to hand it to: reset it rather than leave the client hanging.
  spdlog::warn("connection to port {} dropped: no lpk-proxy is connected", port);
  error_code ec;
  socket.set_option(asio::socket_base::linger(true, 0), ec);
}

}  // namespace lpk::agent
