// lpk-kubesim: a local Kubernetes API server whose pods are processes in network namespaces.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "tools/kubesim/cluster.hpp"

namespace {

int usage_error(const std::string& what) {
  std::cerr << "lpk-kubesim: " << what
            << " (usage: lpk-kubesim up [--manifests DIR] [--state DIR] [--port N] "
               "[--image-store DIR] [--images FILE] "
               "[--no-runtime] [--aws-default-region R] [--sts-regional-endpoint] "
               "[--sync-frequency DURATION] [--token-refresh-after DURATION] "
               "[--ip-family ipv4|ipv6] | lpk-kubesim down [--state DIR])\n";
  return 2;
}

bool on_path(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t pos = 0; pos <= dirs.size();) {
    size_t colon = std::min(dirs.find(':', pos), dirs.size());
    if (access((dirs.substr(pos, colon - pos) + "/" + tool).c_str(), X_OK) == 0) return true;
    pos = colon + 1;
  }
  return false;
}

// "90", "90s", "500ms", "2m"; nullopt for anything else (or for zero).
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  char* end = nullptr;
  double number = std::strtod(text.c_str(), &end);
  std::string unit(end);
  double scale = unit.empty() || unit == "s" ? 1000 : unit == "ms" ? 1 : unit == "m" ? 60000 : 0;
  if (end == text.c_str() || !(number > 0) || scale == 0 || number * scale > 86400e3) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(number * scale + 0.5));
}

// After Cluster::stop() has closed every listener and connection and ended every pod, the
// coroutines it woke still have to run to their end: they use the store, the server and
// the kubelet, which must outlive them. Bounded, so that a stuck peer cannot hold the exit.
bool drain(boost::asio::io_context& io) {
  io.restart();
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!io.stopped() && std::chrono::steady_clock::now() < end) {
    io.run_for(std::chrono::milliseconds(100));
  }
  return io.stopped();
}

int run_up(const lpk::kubesim::ClusterOptions& opts) {
  using namespace lpk::kubesim;
  boost::asio::io_context io;
  Cluster cluster(io, opts);
  int rc = 0;
  // Registered before start() so that a Ctrl-C while pods start still tears them down.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) io.stop();
  });
  try {
    cluster.start();
    std::cout << "kubesim: serving https://127.0.0.1:" << cluster.port() << " kubeconfig "
              << cluster.kubeconfig().string() << std::endl;
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "lpk-kubesim: " << e.what() << "\n";
    rc = 1;
  }
  // Signals that come during the teardown are swallowed by the registered set: a second
  // Ctrl-C must not leave namespaces behind.
  boost::system::error_code ignored;
  signals.cancel(ignored);
  cluster.stop();
  if (!drain(io)) {
    // Everything kubesim made is gone already; what is left is memory. Destroying the
    // io_context with coroutines still suspended would run their destructors after the
    // objects they refer to, so leave without it.
    spdlog::warn("kubesim: {} connection(s) did not end within 5 s of stopping; exiting",
                 cluster.connections());
    std::cout.flush();
    std::_Exit(rc);
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lpk::kubesim;
  if (argc < 2) return usage_error("missing command");
  std::string cmd = argv[1];
  ClusterOptions opts;
  opts.state_dir = "/tmp/lpk-kubesim";
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--state" && (v = value()))
      opts.state_dir = v;
    else if (a == "--manifests" && (v = value()))
      opts.manifests = v;
    else if (a == "--images" && (v = value()))
      opts.images = v;
    else if (a == "--image-store" && (v = value())) {
      if (!std::filesystem::is_directory(v)) {
        return usage_error(std::string("--image-store wants a directory of OCI archives (*.tar) "
                                       "or OCI layouts; '") + v + "' is not a directory");
      }
      opts.image_store = v;
      for (const char* tool : {"crun", "umoci"}) {
        if (!on_path(tool)) {
          return usage_error(std::string("--image-store runs containers with crun and unpacks "
                                         "images with umoci, and ") + tool +
                             " is not on PATH; install it (tools/install-deps.sh)");
        }
      }
    }
    else if (a == "--port" && (v = value()))
      opts.port = uint16_t(std::atoi(v));
    else if (a == "--no-runtime")
      opts.runtime = false;
    else if (a == "--aws-default-region" && (v = value()))
      opts.irsa.region = v;
    else if (a == "--sts-regional-endpoint")
      opts.irsa.regional_sts = true;
    else if (a == "--ip-family" && (v = value())) {
      auto family = ClusterNetwork::parse_family(v);
      if (!family) {
        return usage_error("--ip-family wants ipv4 or ipv6, not '" + std::string(v) + "'");
      }
      opts.ip_family = *family;
    } else if (a == "--watch-history" && (v = value()))
      opts.watch_history = size_t(std::atol(v));
    else if ((a == "--sync-frequency" || a == "--token-refresh-after") && (v = value())) {
      auto d = parse_duration(v);
      if (!d) return usage_error(a + " wants a duration such as 1s, 500ms or 2m, not '" + v + "'");
      (a == "--sync-frequency" ? opts.sync_frequency : opts.token_refresh_after) = *d;
    } else if (a == "-v")
      spdlog::set_level(spdlog::level::debug);
    else
      return usage_error("unknown or incomplete option '" + a + "'");
  }
  if (cmd == "down") {
    try {
      std::cout << "lpk-kubesim: " << shut_down(opts.state_dir) << "\n";
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "lpk-kubesim: " << e.what() << "\n";
      return 1;
    }
  }
  if (cmd != "up") return usage_error("unknown command '" + cmd + "'");
  if (opts.runtime && geteuid() != 0) {
    std::cerr << "lpk-kubesim: running pods needs root (network and mount namespaces); run it "
                 "with sudo, or pass --no-runtime to serve the API without pods\n";
    return 1;
  }
  return run_up(opts);
}
