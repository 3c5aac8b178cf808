#include "agent/router/router_main.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>

#include "agent/router/route_watch.hpp"
#include "agent/router/router.hpp"
#include "kube/config.hpp"
#include "proxy/tunnel/duration.hpp"
#include "proxy/tunnel/flags.hpp"
#include "proxy/tunnel/listen.hpp"

namespace lpk::router {

namespace {

constexpr const char* kUsage =
    "usage: lpk-agent router --service SVC --original-selector K=V[,K=V...]\n"
    "                        --port TP[=FALLBACK_HOST:PORT]... [--namespace NS]\n"
    "                        [--admin-port N] [--idle-timeout DURATION] [--routes-file PATH]\n"
    "                        [--log-level LEVEL]\n"
    "Routes the requests to Service SVC's ports: a request whose header matches a session's\n"
    "route goes to that session's agent pod, every other to the original pods (the ready pods\n"
    "of NS matching the selector; FALLBACK_HOST:PORT when there is none). The admin port\n"
    "(default 15090) answers GET /healthz and GET /routes. An HTTP/1 connection idle longer\n"
    "than --idle-timeout (default 1h; 0: never) is closed. --routes-file replaces the pods of\n"
    "the Kubernetes API with a JSON file (tests, benchmarks). docs/router.md says more.";

struct Parsed {
  RouterOptions router;
  std::string ns, selector, routes_file;
};

std::uint16_t parse_port(const std::string& text, const std::string& flag) {
  auto port = tunnel::parse_port_number(text);
  if (!port) {
    throw std::invalid_argument(flag + " wants a port number 0-65535, got '" + text + "'");
  }
  return *port;
}

PortSpec parse_port_spec(const std::string& value) {
  PortSpec spec;
  auto eq = value.find('=');
  spec.port = parse_port(value.substr(0, eq), "--port");
  if (eq == std::string::npos) return spec;
  auto fallback = value.substr(eq + 1);
  auto colon = fallback.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::invalid_argument("--port wants TP=FALLBACK_HOST:PORT, got '" + value + "'");
  }
  spec.fallback_host = fallback.substr(0, colon);
  if (spec.fallback_host.front() == '[' && spec.fallback_host.back() == ']') {
    spec.fallback_host = spec.fallback_host.substr(1, spec.fallback_host.size() - 2);
  }
  spec.fallback_port = parse_port(fallback.substr(colon + 1), "--port's fallback");
  if (spec.fallback_port == 0)
    throw std::invalid_argument("--port's fallback wants a port 1-65535");
  return spec;
}

void check_selector(const std::string& selector) {
  std::size_t start = 0;
  while (start <= selector.size()) {
    auto comma = std::min(selector.find(',', start), selector.size());
    auto term = selector.substr(start, comma - start);
    auto eq = term.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::invalid_argument("--original-selector wants K=V[,K=V...], got '" + selector + "'");
    }
    start = comma + 1;
  }
}

void set_log_level(const std::string& value) {
  auto level = spdlog::level::from_str(value);
  if (level == spdlog::level::off && value != "off") {
    throw std::invalid_argument("--log-level wants trace, debug, info, warn or error");
  }
  spdlog::set_level(level);
}

std::chrono::milliseconds parse_idle_timeout(const std::string& value) {
  auto d = tunnel::parse_duration(value);  // 0: never
  if (!d) throw std::invalid_argument("--idle-timeout wants a duration like 90s, 30m or 1h, or 0");
  return *d;
}

Parsed parse(std::span<const std::string> args) {
  Parsed p;
  auto handle = [&](const std::string& flag, const std::string& value) {
    if (flag == "-h" || flag == "--help") {
      std::printf("%s\n", kUsage);
      std::exit(0);
    }
    if (flag == "--namespace")
      p.ns = value;
    else if (flag == "--service")
      p.router.service = value;
    else if (flag == "--original-selector")
      p.selector = value;
    else if (flag == "--port")
      p.router.ports.push_back(parse_port_spec(value));
    else if (flag == "--admin-port")
      p.router.admin_port = parse_port(value, flag);
    else if (flag == "--idle-timeout")
      p.router.idle_timeout = parse_idle_timeout(value);
    else if (flag == "--routes-file")
      p.routes_file = value;
    else if (flag == "--log-level")
      set_log_level(value);
    else
      throw std::invalid_argument("unknown flag " + flag);
  };
  tunnel::for_each_flag(args, handle, nullptr, {"-h", "--help"});
  if (p.router.service.empty() || p.router.ports.empty()) {
    throw std::invalid_argument("--service and at least one --port are required");
  }
  if (p.routes_file.empty() && p.selector.empty()) {
    throw std::invalid_argument("--original-selector is required (unless --routes-file)");
  }
  if (!p.selector.empty()) check_selector(p.selector);
  return p;
}

/// How long connections may take to end after SIGTERM (Router::drain) before they are closed.
constexpr auto kDrainGrace = std::chrono::seconds(5);

/// Runs the io_context until SIGTERM or SIGINT has drained the router and stopped `source`.
template <class Source>
void run_until_signal(boost::asio::io_context& io, Router& router, Source& source) {
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer grace(io);
  signals.async_wait([&](boost::system::error_code, int) {
    source.stop();
    grace.expires_after(kDrainGrace);
    grace.async_wait([&](boost::system::error_code) {  // drained (cancelled), or out of time
      router.stop();
      io.stop();
    });
    router.drain([&] { grace.cancel(); });
  });
  std::signal(SIGPIPE, SIG_IGN);
  source.start();
  router.start();
  io.run();
}

/// Binds, prints the ports' lines and runs with `source` (a RoutesFileWatch or a PodWatch made
/// by `make_source` from the io_context's executor and the route callback).
template <class MakeSource>
int serve(Parsed& parsed, MakeSource&& make_source) {
  boost::asio::io_context io(1);
  Router router(io.get_executor(), parsed.router);
  if (auto bound = router.bind(); !bound) {
    std::fprintf(stderr, "lpk-agent: router: %s\n", bound.error().message.c_str());
    return 1;
  }
  for (const auto& e : router.port_endpoints()) {
    tunnel::print_line(kRouterLine, tunnel::endpoint_text(e));
  }
  tunnel::print_line(kRouterAdminLine, tunnel::endpoint_text(router.admin_endpoint()));
  auto source = make_source(io.get_executor(),
                            [&router](RouteSet routes) { router.update(std::move(routes)); });
  run_until_signal(io, router, *source);
  return 0;
}

int serve(Parsed& parsed) {
  if (!parsed.routes_file.empty()) {
    return serve(parsed, [&](boost::asio::any_io_executor ex, OnRoutes update) {
      return std::make_unique<RoutesFileWatch>(ex, parsed.routes_file, update);
    });
  }
  // Before anything is bound: outside a pod, say so and nothing else.
  auto config = kube::in_cluster_config();
  if (!config) {
    throw std::runtime_error(
        "not in a pod: KUBERNETES_SERVICE_HOST/PORT or the service account "
        "token is missing (outside a cluster, use --routes-file)");
  }
  kube::Client client(*config);
  auto ns = parsed.ns.empty() ? config->namespace_ : parsed.ns;
  return serve(parsed, [&](boost::asio::any_io_executor ex, OnRoutes update) {
    return std::make_unique<PodWatch>(ex, client, ns, parsed.router.service, parsed.selector,
                                      update);
  });
}

}  // namespace

int run_router(std::span<const std::string> args) {
  Parsed parsed;
  try {
    parsed = parse(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-agent: router: %s (see lpk-agent router --help)\n", e.what());
    return 2;
  }
  try {
    return serve(parsed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-agent: router: %s\n", e.what());
    return 1;
  }
}

}  // namespace lpk::router
