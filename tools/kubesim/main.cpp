// lpk-kubesim: a local Kubernetes API server whose pods are processes in network namespaces.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstring>
#include <iostream>

#include "tools/kubesim/cluster.hpp"

namespace {

int usage_error(const std::string& what) {
  std::cerr << "lpk-kubesim: " << what
            << " (usage: lpk-kubesim up [--manifests DIR] [--state DIR] [--port N] "
               "[--no-runtime] | lpk-kubesim down [--state DIR])\n";
  return 2;
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
    else if (a == "--port" && (v = value()))
      opts.port = uint16_t(std::atoi(v));
    else if (a == "--no-runtime")
      opts.runtime = false;
    else if (a == "--watch-history" && (v = value()))
      opts.watch_history = size_t(std::atol(v));
    else if (a == "-v")
      spdlog::set_level(spdlog::level::debug);
    else
      return usage_error("unknown or incomplete option '" + a + "'");
  }
  if (cmd == "down") {
    try {
      std::cout << "lpk-kubesim: " << shut_down(opts.state_dir) << "\n";
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "lpk-kubesim: " << e.what() << "; run `sudo lpk-kubesim down`\n";
      return 1;
    }
  }
  if (cmd != "up") return usage_error("unknown command '" + cmd + "'");
  if (opts.runtime && geteuid() != 0) {
    std::cerr << "lpk-kubesim: running pods needs root (network and mount namespaces); run it "
                 "with sudo, or pass --no-runtime to serve the API without pods\n";
    return 1;
  }
  boost::asio::io_context io;
  try {
    Cluster cluster(io, opts);
    cluster.start();
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) {
      cluster.stop();
      io.stop();
    });
    std::cout << "kubesim: serving https://127.0.0.1:" << cluster.port() << " kubeconfig "
              << cluster.kubeconfig().string() << std::endl;
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "lpk-kubesim: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
