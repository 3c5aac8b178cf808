#include "agent/services.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/coro.hpp"
#include "kube/text.hpp"
#include "proxy/tunnel/loopback_pair.hpp"

namespace lpk::agent {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::chrono::seconds kEnvLinger{60};

std::string normalized(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return text::ascii_lower(host);
}

asio::awaitable<void> drain(tcp::socket& socket) {
  std::array<char, 512> sink;
  while (true) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink), kTuple);
    if (ec) co_return;
  }
}

asio::awaitable<void> serve_env(tcp::socket socket, EnvReportOptions options) {
  auto doc = tunnel::encode_environment(environment_report(options, process_environment()));
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(doc), kTuple);
  if (ec) {
    spdlog::debug("env service: the stream ended early: {}", ec.message());
    co_return;
  }
  spdlog::info("env service: sent {} bytes", n);
  socket.shutdown(tcp::socket::shutdown_send, ec);
  // Wait for the proxy to close its end: closing with unread input would reset the stream
  // and could cut the document's tail.
  asio::steady_timer linger(socket.get_executor(), kEnvLinger);
  co_await (drain(socket) || linger.async_wait(kTuple));
}

asio::awaitable<bool> send_update(tcp::socket& socket, const tunnel::FilesUpdate& update) {
  auto line = tunnel::encode_files_update(update);
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(line), kTuple);
  if (ec) spdlog::debug("files service: the stream ended: {}", ec.message());
  co_return !ec;
}

// Looks at the mounts again every `files_poll` and sends what changed; the flow control of
// the stream bounds what is queued for a proxy that does not read.
asio::awaitable<void> send_changes(tcp::socket& socket, const EnvReportOptions& options) {
  auto walk = [&options] { return collect_files(options.mounts, options.limits); };
  constexpr std::chrono::milliseconds kSettle{25};
  auto last = co_await settled_walk(walk, kSettle, 3);
  tunnel::FilesUpdate full{true, last.files, {}, last.skipped};
  if (!co_await send_update(socket, full)) co_return;
  asio::steady_timer poll(socket.get_executor());
  while (true) {
    poll.expires_after(options.files_poll);
    if (auto [ec] = co_await poll.async_wait(kTuple); ec) co_return;
    auto now = co_await settled_walk(walk, kSettle, 3);
    auto update = files_changes(last, now);
    last = std::move(now);
    if (no_changes(update)) continue;
    spdlog::info("files service: {} changed, {} removed, {} skipped", update.files.size(),
                 update.removed.size(), update.skipped.size());
    if (!co_await send_update(socket, update)) co_return;
  }
}

// Until the proxy closes its end (or the stream breaks).
asio::awaitable<void> serve_files(tcp::socket socket, EnvReportOptions options) {
  co_await (drain(socket) || send_changes(socket, options));
}

}  // namespace

asio::awaitable<FileReport> settled_walk(const std::function<FileReport()>& walk,
                                         std::chrono::milliseconds pause, int retries) {
  auto report = walk();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int again = 0; again < retries && walk_met_missing(report); ++again) {
    timer.expires_after(pause);
    co_await timer.async_wait(kTuple);
    report = walk();
  }
  co_return report;
}

bool is_service_target(const tunnel::Target& target) {
  return target.kind == tunnel::Target::Kind::name && tunnel::is_service_name(target.host);
}

asio::awaitable<tunnel::DialResult> dial_service(const tunnel::Target& target,
                                                 const ServiceOptions& options) {
  using tunnel::DialResult;
  using tunnel::OpenCode;
  auto executor = co_await asio::this_coro::executor;
  const auto host = normalized(target.host);
  const bool env = host == tunnel::kEnvServiceHost;
  const bool files = host == tunnel::kFilesServiceHost;
  if (!env && !files && host != tunnel::kDnsServiceHost) {
    co_return DialResult{OpenCode::name_not_found, "no agent service is named " + target.host,
                         std::nullopt};
  }
  const auto port = env     ? tunnel::kEnvServicePort
                    : files ? tunnel::kFilesServicePort
                            : tunnel::kDnsServicePort;
  if (target.port != port) {
    co_return DialResult{OpenCode::refused, host + " answers on port " + std::to_string(port),
                         std::nullopt};
  }
  tunnel::Result<asio::ip::udp::endpoint> nameserver = asio::ip::udp::endpoint();
  const bool dns = !env && !files;
  if (dns && !(nameserver = first_nameserver(options.dns.resolv_conf))) {
    co_return DialResult{OpenCode::unreachable, nameserver.error().message, std::nullopt};
  }
  auto pair = tunnel::loopback_pair(executor);
  if (!pair) {
    co_return DialResult{OpenCode::internal,
                         "cannot make a loopback socket pair: " + pair.error().message(),
                         std::nullopt};
  }
  auto& [service_end, tunnel_end] = *pair;
  if (env) {
    asio::co_spawn(executor, serve_env(std::move(service_end), options.env), asio::detached);
  } else if (files) {
    asio::co_spawn(executor, serve_files(std::move(service_end), options.env), asio::detached);
  } else {
    auto forwarder =
        std::make_shared<DnsForwarder>(std::move(service_end), *nameserver, options.dns);
    if (auto opened = forwarder->open(); !opened) {
      co_return DialResult{OpenCode::unreachable, opened.error().message, std::nullopt};
    }
    forwarder->start();
  }
  co_return DialResult{OpenCode::ok, {}, std::move(tunnel_end)};
}

}  // namespace lpk::agent
