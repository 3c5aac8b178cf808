// lpk-agent: the cluster end of the lpk tunnel. Parses options, binds, runs until a signal.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "agent/agent.hpp"
#include "agent/restore_watch.hpp"
#include "agent/router/router.hpp"
#include "agent/router/router_main.hpp"
#include "agent/self_copy.hpp"
#include "proxy/tunnel/duration.hpp"
#include "proxy/tunnel/handshake.hpp"
#include "proxy/tunnel/listen.hpp"

namespace {

constexpr const char* kUsage =
    "usage: lpk-agent [--listen ADDR:PORT] [--serve PORT]... [--serve-address ADDR]\n"
    "                 [--connect-timeout SECS] [--secret-file PATH | --secret-env NAME]\n"
    "                 [--log-level LEVEL]\n"
    "                 [--dead-link-timeout DURATION] [--resume-grace DURATION]\n"
    "                 [--report-mounts DIR[,DIR...]] [--file-limit BYTES]\n"
    "                 [--file-total-limit BYTES] [--files-poll DURATION] [--container NAME]\n"
    "                 [--resolv-conf PATH]\n"
    "       lpk-agent restore-watch ... (the restorer of a connect session; --help there)\n"
    "       lpk-agent router ... (the request router of header-routed sessions; --help there)\n"
    "       lpk-agent install DIR (copies itself, its loader and libraries into DIR)\n"
    "Streams to env.lpk.internal:1, files.lpk.internal:1 and dns.lpk.internal:53 are served\n"
    "by the agent itself (docs/protocol.md section 7).";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::uint16_t parse_port(const std::string& text, const std::string& flag) {
  auto port = lpk::tunnel::parse_port_number(text);
  if (!port) throw UsageError(flag + " wants a port number 0-65535, got '" + text + "'");
  return *port;
}

std::uint64_t parse_bytes(const std::string& text, const std::string& flag) {
  std::size_t used = 0;
  unsigned long long bytes = 0;
  try {
    bytes = std::stoull(text, &used);
  } catch (const std::exception&) {
  }
  if (used != text.size() || text.empty() || text[0] == '-' || bytes == 0) {
    throw UsageError(flag + " wants a size in bytes (1 or more), got '" + text + "'");
  }
  return bytes;
}

std::vector<std::string> split_dirs(const std::string& text) {
  std::vector<std::string> dirs;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    auto dir = text.substr(start, comma - start);
    if (!dir.empty() && dir[0] != '/') {
      throw UsageError("--report-mounts wants absolute paths, got '" + dir + "'");
    }
    if (!dir.empty()) dirs.push_back(dir);
    start = comma + 1;
  }
  return dirs;
}

boost::asio::ip::tcp::endpoint parse_endpoint(const std::string& text, const std::string& flag) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) throw UsageError(flag + " wants ADDR:PORT, got '" + text + "'");
  auto host = text.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) throw UsageError(flag + ": '" + host + "' is not an IP address");
  return {address, parse_port(text.substr(colon + 1), flag)};
}

/// The secret in variable `name` (`connect` sets it from the session's Secret), which is then
/// removed from the process's environment and added to `hidden` (the env report's).
std::string secret_from_environment(const std::string& name, std::vector<std::string>& hidden) {
  const char* value = std::getenv(name.c_str());
  if (!value || !*value) {
    throw UsageError("--secret-env: the variable " + name + " is not set or empty");
  }
  std::string secret = value;
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  ::unsetenv(name.c_str());
  hidden.push_back(name);
  return secret;
}

/// The flags of what the env and files services report; false for any other flag.
bool parse_report_flag(const std::string& flag, const std::string& value,
                       lpk::agent::EnvReportOptions& o) {
  if (flag == "--report-mounts") {
    auto dirs = split_dirs(value);
    o.mounts.insert(o.mounts.end(), dirs.begin(), dirs.end());
  } else if (flag == "--files-poll") {
    auto poll = lpk::tunnel::parse_duration(value);
    if (!poll || *poll < std::chrono::milliseconds(100) || *poll > std::chrono::hours(1)) {
      throw UsageError("--files-poll wants a duration from 100ms to 1h, like 2s");
    }
    o.files_poll = *poll;
  } else if (flag == "--file-limit") {
    o.limits.per_file = parse_bytes(value, flag);
  } else if (flag == "--file-total-limit") {
    o.limits.total = parse_bytes(value, flag);
  } else if (flag == "--container") {
    o.container = value;
  } else {
    return false;
  }
  return true;
}

lpk::agent::AgentOptions parse(int argc, char** argv) {
  lpk::agent::AgentOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::cout << kUsage << "\n";
      std::exit(0);
    }
    if (flag == "--console-lines") {
      std::cout << lpk::tunnel::console_lines_json(
                       {&lpk::agent::kTunnelLine, &lpk::agent::kServeLine,
                        &lpk::router::kRouterLine, &lpk::router::kRouterAdminLine})
                << "\n";
      std::exit(0);
    }
    if (i + 1 >= argc) throw UsageError("unknown flag or missing value: " + flag);
    std::string value = argv[++i];
    if (flag == "--listen") {
      o.tunnel_endpoint = parse_endpoint(value, flag);
    } else if (flag == "--serve") {
      auto port = parse_port(value, flag);
      if (port == 0) throw UsageError("--serve wants a port 1-65535");
      o.serve_ports.push_back(port);
    } else if (flag == "--serve-address") {
      boost::system::error_code ec;
      o.serve_address = boost::asio::ip::make_address(value, ec);
      if (ec) throw UsageError("--serve-address: '" + value + "' is not an IP address");
    } else if (flag == "--connect-timeout") {
      o.connect_timeout = std::chrono::milliseconds(std::max(1, parse_port(value, flag) * 1000));
    } else if (flag == "--secret-file") {
      o.session.secret = lpk::tunnel::read_secret_file(value).value();
    } else if (flag == "--secret-env") {
      o.session.secret = secret_from_environment(value, o.services.env.hidden_variables);
    } else if (flag == "--dead-link-timeout") {
      o.session.dead_link_timeout = lpk::tunnel::parse_dead_link_timeout(value);
    } else if (flag == "--resume-grace") {
      o.session.resume_grace = lpk::tunnel::parse_resume_grace(value);
    } else if (parse_report_flag(flag, value, o.services.env)) {
    } else if (flag == "--resolv-conf") {
      o.services.dns.resolv_conf = value;
    } else if (flag == "--log-level") {
      auto level = spdlog::level::from_str(value);
      if (level == spdlog::level::off && value != "off") {
        throw UsageError("--log-level wants trace, debug, info, warn or error");
      }
      spdlog::set_level(level);
    } else {
      throw UsageError("unknown flag " + flag);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_st("lpk-agent"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (argc > 1 && std::string(argv[1]) == "restore-watch") {
    return lpk::agent::run_restore_watch(std::vector<std::string>(argv + 2, argv + argc));
  }
  if (argc > 1 && std::string(argv[1]) == "router") {
    return lpk::router::run_router(std::vector<std::string>(argv + 2, argv + argc));
  }
  if (argc > 1 && std::string(argv[1]) == "install") {
    return lpk::agent::run_install(std::vector<std::string>(argv + 2, argv + argc));
  }
  lpk::agent::AgentOptions options;
  try {
    options = parse(argc, argv);
    // Whatever holds the secret (its variable, a mounted file) stays out of the env report.
    options.services.env.tunnel_secret = options.session.secret;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-agent: %s (see lpk-agent --help)\n", e.what());
    return 2;
  }
  boost::asio::io_context io(1);
  lpk::agent::Agent agent(io.get_executor(), options);
  std::vector<std::string> errors;
  if (auto bound = agent.bind(errors); !bound) {
    std::fprintf(stderr, "lpk-agent: %s\n", bound.error().message.c_str());
    return 1;
  }
  for (const auto& e : errors) std::fprintf(stderr, "lpk-agent: %s\n", e.c_str());
  using lpk::tunnel::endpoint_text;
  lpk::tunnel::print_line(lpk::agent::kTunnelLine, endpoint_text(agent.tunnel_endpoint()));
  for (const auto& s : agent.serve_endpoints()) {
    lpk::tunnel::print_line(lpk::agent::kServeLine, endpoint_text(s));
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer grace(io);
  signals.async_wait([&](boost::system::error_code, int) {
    agent.stop();
    // Let the GOAWAY go out, then end whatever is left.
    grace.expires_after(std::chrono::milliseconds(300));
    grace.async_wait([&](boost::system::error_code) { io.stop(); });
  });
  std::signal(SIGPIPE, SIG_IGN);
  agent.start();
  io.run();
  return 0;
}
