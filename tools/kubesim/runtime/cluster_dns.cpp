#include "tools/kubesim/runtime/cluster_dns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "dns/server.hpp"
#include "tools/kubesim/runtime/netns.hpp"
#include "kube/text.hpp"

namespace lpk::kubesim {

namespace asio = boost::asio;

dns::TableSpec cluster_table(const Store& store, const std::string& zone) {
  dns::TableSpec spec;
  spec.zone = zone;
  for (const auto& ns : store.list("namespaces")) spec.namespaces.push_back(ns["metadata"]["name"]);
  for (const auto& s : store.list("services")) {
    dns::Service svc;
    svc.name = s["metadata"]["name"];
    svc.ns = s["metadata"]["namespace"];
    std::string ip = s["spec"].value("clusterIP", "");
    svc.external_name = s["spec"].value("externalName", "");
    svc.headless = ip == "None";
    if (!ip.empty() && !svc.headless) svc.address = asio::ip::make_address(ip);
    for (const auto& p : s["spec"].value("ports", json::array())) {
      svc.ports.push_back(
          {p.value("name", ""), uint16_t(p.value("port", 0)), text::ascii_lower(p.value("protocol", "TCP"))});
    }
    if (svc.headless) {
      if (auto ep = store.get("endpoints", svc.ns, svc.name)) {
        for (const auto& ss : ep->value("subsets", json::array())) {
          for (const auto& a : ss.value("addresses", json::array())) {
            svc.endpoints.push_back(
                {asio::ip::make_address(a.value("ip", "0.0.0.0")), a.value("hostname", ""), true});
          }
        }
      }
    }
    spec.services.push_back(std::move(svc));
  }
  return spec;
}

ClusterDns::ClusterDns(asio::io_context& io, Store& store, std::string address, std::string zone)
    : io_(io), store_(store), address_(std::move(address)), zone_(std::move(zone)) {}

ClusterDns::~ClusterDns() { stop(); }

void ClusterDns::start() {
  dns::ServerOptions opts;
  opts.address = asio::ip::make_address(address_);
  opts.port = 53;
  server_ = std::make_unique<dns::Server>(dns_io_, opts,
                                          dns::NameTable::build(cluster_table(store_, zone_)));
  // The server opens its sockets in start(): open them from inside the node namespace.
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int node = open(netns_path(node_netns()).c_str(), O_RDONLY | O_CLOEXEC);
  if (self < 0 || node < 0 || setns(node, CLONE_NEWNET) != 0) {
    if (self >= 0) close(self);
    if (node >= 0) close(node);
    throw std::runtime_error("cannot enter the node network namespace for DNS");
  }
  std::exception_ptr failure;
  try {
    server_->start();
  } catch (...) {
    failure = std::current_exception();
  }
  setns(self, CLONE_NEWNET);
  close(self);
  close(node);
  if (failure) std::rethrow_exception(failure);
  thread_ = std::thread([this] { dns_io_.run(); });
  listener_ = store_.add_listener([this](const WatchEvent& ev) {
    if (ev.resource != "services" && ev.resource != "endpoints" && ev.resource != "namespaces") {
      return;
    }
    if (scheduled_) return;
    scheduled_ = true;
    asio::post(io_, [this, alive = alive_] {
      if (!*alive) return;
      scheduled_ = false;
      rebuild();
    });
  });
}

void ClusterDns::rebuild() {
  std::shared_ptr<const dns::NameTable> table;
  try {
    table = dns::NameTable::build(cluster_table(store_, zone_));
  } catch (const std::exception& e) {
    spdlog::warn("kubesim: DNS table not rebuilt: {}", e.what());
    return;
  }
  asio::post(dns_io_, [this, table = std::move(table)] { server_->set_table(table); });
}

void ClusterDns::stop() {
  *alive_ = false;
  if (listener_ >= 0) store_.remove_listener(listener_);
  listener_ = -1;
  if (thread_.joinable()) {
    // The server's sockets and timers belong to its thread: stop them there, then let it end.
    asio::post(dns_io_, [this] { server_->stop(); });
    thread_.join();
  }
  server_.reset();
}

}  // namespace lpk::kubesim
