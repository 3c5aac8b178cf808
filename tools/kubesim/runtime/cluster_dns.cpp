#include "tools/kubesim/runtime/cluster_dns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

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

dns::ClusterAnswer pod_answer(const std::string& name, std::uint16_t qtype,
                              const std::string& zone,
                              const std::function<bool(const std::string&)>& namespace_exists) {
  constexpr std::uint8_t kNxDomain = 3;
  constexpr std::uint16_t kTypeA = 1, kTypeAaaa = 28;
  const std::string suffix = ".pod." + zone + ".";
  if (name.size() <= suffix.size() || !name.ends_with(suffix)) return {kNxDomain, {}};
  const std::string rest = name.substr(0, name.size() - suffix.size());  // "<ip>.<ns>"
  const auto dot = rest.find('.');
  if (dot == std::string::npos || rest.find('.', dot + 1) != std::string::npos) {
    return {kNxDomain, {}};
  }
  std::string ip = rest.substr(0, dot);
  const bool dotted =
      std::count(ip.begin(), ip.end(), '-') == 3 && ip.find("--") == std::string::npos;
  std::replace(ip.begin(), ip.end(), '-', dotted ? '.' : ':');
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(ip, ec);
  if (ec || !namespace_exists(rest.substr(dot + 1))) return {kNxDomain, {}};
  dns::ClusterAnswer answer;
  if (address.is_v4() && qtype == kTypeA) {
    const auto b = address.to_v4().to_bytes();
    answer.records.push_back({name, kTypeA, 5, {b.begin(), b.end()}});
  } else if (address.is_v6() && qtype == kTypeAaaa) {
    const auto b = address.to_v6().to_bytes();
    answer.records.push_back({name, kTypeAaaa, 5, {b.begin(), b.end()}});
  }
  return answer;  // no record of the asked type: NODATA
}

namespace {

// The server's ClusterResolver: pod names from pod_answer, for the names its table lacks.
class PodNames final : public dns::ClusterResolver {
 public:
  PodNames(asio::io_context& io, std::string zone, const std::unique_ptr<dns::Server>& server)
      : io_(io), zone_(std::move(zone)), server_(server) {}
  void resolve(const std::string& name, std::uint16_t qtype, Callback done) override {
    auto table = server_->table();
    auto answer = pod_answer(name, qtype, zone_, [&](const std::string& ns) {
      return table && table->is_namespace(ns);
    });
    // Never from inside the server's handling of the query: it counts it as in flight after.
    asio::post(io_, [done = std::move(done), answer = std::move(answer)]() mutable {
      done(std::move(answer));
    });
  }

 private:
  asio::io_context& io_;
  std::string zone_;
  const std::unique_ptr<dns::Server>& server_;
};

}  // namespace

ClusterDns::ClusterDns(asio::io_context& io, Store& store, std::string address, std::string zone)
    : io_(io), store_(store), address_(std::move(address)), zone_(std::move(zone)) {}

ClusterDns::~ClusterDns() { stop(); }

void ClusterDns::start() {
  dns::ServerOptions opts;
  opts.address = asio::ip::make_address(address_);
  opts.port = 53;
  pods_ = std::make_unique<PodNames>(dns_io_, zone_, server_);
  server_ = std::make_unique<dns::Server>(
      dns_io_, opts, dns::NameTable::build(cluster_table(store_, zone_)), nullptr, pods_.get());
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
