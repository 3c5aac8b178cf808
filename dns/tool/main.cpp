// lpk-dns: the stub DNS server on its own, serving a name table from a JSON file and forwarding
// other names to the resolvers of a resolv.conf. Used by tests and benchmarks; lpk-proxy
// embeds the same library. `lpk-dns resolver ...` is the `lpk-proxy resolver ...` command.
//
//   lpk-dns --table FILE [--listen ADDR:PORT] [--resolv-conf PATH | --no-forward]
//           [--upstream-timeout MS] [--tcp-idle-timeout MS]
//   stdout: `listen ADDR:PORT` once UDP and TCP are bound. SIGHUP reloads the table,
//   SIGINT/SIGTERM stop it (exit 0).
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "dns/server.hpp"
#include "dns/system_resolver.hpp"
#include "dns/upstream.hpp"

namespace {

struct Flags {
  std::string table;
  std::string listen = "127.0.0.1:0";
  std::string resolv_conf = "/etc/resolv.conf";
  bool forward = true;
  int upstream_timeout_ms = 1000;
  int tcp_idle_ms = 10000;
};

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "lpk-dns: " << message << "\n";
  std::exit(2);
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--no-forward") {
      f.forward = false;
      continue;
    }
    if (i + 1 >= argc)
      fail(flag + " needs a value (see the usage at the top of dns/tool/main.cpp)");
    const std::string value = argv[++i];
    try {
      if (flag == "--table")
        f.table = value;
      else if (flag == "--listen")
        f.listen = value;
      else if (flag == "--resolv-conf")
        f.resolv_conf = value;
      else if (flag == "--upstream-timeout")
        f.upstream_timeout_ms = std::stoi(value);
      else if (flag == "--tcp-idle-timeout")
        f.tcp_idle_ms = std::stoi(value);
      else
        fail("unknown flag " + flag +
             "; flags: --table --listen --resolv-conf --no-forward "
             "--upstream-timeout --tcp-idle-timeout");
    } catch (const std::logic_error&) {
      fail(flag + " wants a number of milliseconds, got '" + value + "'");
    }
  }
  if (f.table.empty()) fail("--table FILE.json is required (the names to serve)");
  return f;
}

std::shared_ptr<const lpk::dns::NameTable> load_table(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read name table " + path);
  std::stringstream text;
  text << in.rdbuf();
  return lpk::dns::NameTable::build(lpk::dns::parse_table_json(text.str()));
}

boost::asio::ip::udp::endpoint parse_listen(const std::string& s) {
  const auto colon = s.rfind(':');
  std::string host = s.substr(0, colon == std::string::npos ? 0 : colon);
  const std::string port = colon == std::string::npos ? "" : s.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(host, ec);
  if (ec || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    fail("--listen wants ADDR:PORT (e.g. 127.0.0.1:0 or [::1]:5353), got '" + s + "'");
  }
  return {addr, static_cast<std::uint16_t>(std::stoi(port))};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "resolver") {
    std::vector<std::string> args(argv + 2, argv + argc);
    return lpk::dns::run_resolver_command(args, std::cout, std::cerr);
  }
  const Flags flags = parse_flags(argc, argv);
  try {
    boost::asio::io_context io(1);
    const auto listen = parse_listen(flags.listen);
    std::optional<lpk::dns::Upstream> upstream;
    if (flags.forward) {
      lpk::dns::UpstreamOptions uo;
      uo.resolv_conf = flags.resolv_conf;
      uo.timeout = std::chrono::milliseconds(flags.upstream_timeout_ms);
      uo.exclude = {listen};
      upstream.emplace(io, uo);
    }
    lpk::dns::ServerOptions so;
    so.address = listen.address();
    so.port = listen.port();
    so.tcp_idle_timeout = std::chrono::milliseconds(flags.tcp_idle_ms);
    lpk::dns::Server server(io, so, load_table(flags.table), upstream ? &*upstream : nullptr);
    server.start();
    std::cout << "listen " << server.local_endpoint() << std::endl;

    boost::asio::signal_set stop_signals(io, SIGINT, SIGTERM);
    stop_signals.async_wait([&](auto, int) {
      server.stop();
      if (upstream) upstream->stop();
      io.stop();
    });
    boost::asio::signal_set reload(io, SIGHUP);
    std::function<void()> wait_reload = [&] {
      reload.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        try {
          server.set_table(load_table(flags.table));
          std::cout << "reloaded " << server.table()->size() << " names" << std::endl;
        } catch (const std::exception& e) {
          std::cerr << "lpk-dns: reload failed, keeping the old table: " << e.what() << "\n";
        }
        wait_reload();
      });
    };
    wait_reload();
    io.run();
    return 0;
  } catch (const boost::system::system_error& e) {
    std::cerr << "lpk-dns: cannot listen on " << flags.listen << ": " << e.code().message()
              << "; pick another --listen address or port (port 53 needs root)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lpk-dns: " << e.what() << "\n";
    return 1;
  }
}
