#include "tools/kubesim/cluster.hpp"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "tools/kubesim/api.hpp"
#include "tools/kubesim/certs.hpp"
#include "tools/kubesim/controllers/controllers.hpp"
#include "tools/kubesim/http_server.hpp"
#include "tools/kubesim/manifests.hpp"
#include "tools/kubesim/pod_logs.hpp"
#include "tools/kubesim/portforward.hpp"
#include "tools/kubesim/rbac.hpp"
#include "tools/kubesim/rest.hpp"
#include "tools/kubesim/runtime/cluster_dns.hpp"
#include "tools/kubesim/runtime/kubelet.hpp"
#include "tools/kubesim/runtime/netns.hpp"
#include "tools/kubesim/runtime/service_proxy.hpp"
#include "tools/kubesim/serviceaccounts.hpp"
#include "tools/kubesim/status.hpp"
#include "tools/kubesim/store.hpp"
#include "tools/kubesim/tokens.hpp"

namespace lpk::kubesim {

struct Cluster::Impl {
  boost::asio::io_context& io;
  ClusterOptions opts;
  Store store;
  Rest rest;
  EventRecorder events{rest};
  std::unique_ptr<Api> api;
  std::unique_ptr<HttpsServer> server;
  std::unique_ptr<Controllers> controllers;
  std::unique_ptr<Kubelet> kubelet;
  std::unique_ptr<ServiceProxy> proxy;
  std::unique_ptr<PortForward> portforward;
  std::unique_ptr<ClusterDns> dns;
  std::unique_ptr<TokenIssuer> tokens;
  std::unique_ptr<NamespaceDefaults> ns_defaults;
  std::unique_ptr<PodLogs> logs;
  Pki pki;
  bool stopped = false;

  Impl(boost::asio::io_context& io_, ClusterOptions o)
      : io(io_), opts(std::move(o)), store(opts.watch_history), rest(store, AdmitOptions{}) {}

  // POST /kubesim/faults/NAME: what real clusters do to their clients, on demand (README,
  // "Using the tunnel by hand"). nullopt: no such fault.
  std::optional<json> fault(const std::string& name, const std::map<std::string, std::string>& q,
                            const TlsStream& asking) {
    if (name == "apiserver/restart") {
      double s = seconds_arg(name, q, false);
      size_t closed = server->restart(std::chrono::milliseconds(std::llround(s * 1000)), &asking);
      // A frozen port-forward waits for a thaw before it sees its socket is gone.
      if (portforward) portforward->thaw_all();
      return json{{"closed", closed}, {"listening_again_in_seconds", s}};
    }
    if (name == "kubelet/sandbox-failures") {
      // The next N pod sandboxes fail as a vanished veth does (kubelet_pods.cpp).
      if (!kubelet) throw bad_request(name + " needs the pod runtime");
      auto count = q.count("count") ? q.at("count") : "";
      if (count.empty() || count.size() > 2 ||
          count.find_first_not_of("0123456789") != std::string::npos) {
        throw bad_request(name + " wants ?count=N (0 to 99), got '" + count + "'");
      }
      kubelet->fail_next_sandboxes(std::stoi(count));
      return json{{"failing_sandboxes", std::stoi(count)}};
    }
    if (!name.starts_with("portforward/")) return std::nullopt;
    if (!portforward) {
      throw bad_request("port-forward faults need the pod runtime (this kubesim runs with "
                        "--no-runtime)");
    }
    if (name == "portforward/drop") return json{{"dropped", portforward->drop_all()}};
    if (name == "portforward/freeze") return json{{"frozen", portforward->freeze_all()}};
    if (name == "portforward/thaw") return json{{"thawed", portforward->thaw_all()}};
    if (name == "portforward/refuse") {
      double s = seconds_arg(name, q, true);
      portforward->refuse_for(std::chrono::milliseconds(std::llround(s * 1000)));
      return json{{"refusing_seconds", s}};
    }
    return std::nullopt;
  }

  // A fault's ?seconds=N (0 to 3600); 0 when it is optional and not given.
  static double seconds_arg(const std::string& fault, const std::map<std::string, std::string>& q,
                            bool required) {
    auto seconds = q.count("seconds") ? q.at("seconds") : "";
    if (seconds.empty() && !required) return 0;
    char* end = nullptr;
    double s = std::strtod(seconds.c_str(), &end);
    if (seconds.empty() || *end != '\0' || !(s >= 0 && s <= 3600)) {
      throw bad_request(fault + " wants ?seconds=N (0 to 3600), got '" + seconds + "'");
    }
    return s;
  }

  void seed() {
    for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      rest.create_object(
          resource_by_plural("namespaces"),
          {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
    }
    for (auto& obj : bootstrap_policy()) {
      std::string kind = obj.value("kind", "");
      rest.create_object(resource_by_plural(kind == "ClusterRole" ? "clusterroles"
                                                                  : "clusterrolebindings"),
                         std::move(obj));
    }
    rest.create_object(resource_by_plural("services"),
                       {{"apiVersion", "v1"},
                        {"kind", "Service"},
                        {"metadata",
                         {{"name", "kubernetes"},
                          {"namespace", "default"},
                          {"labels", {{"component", "apiserver"}, {"provider", "kubernetes"}}}}},
                        {"spec",
                         {{"clusterIP", rest.admit_options().network.kubernetes_ip()},
                          {"ports",
                           {{{"name", "https"},
                             {"port", 443},
                             {"protocol", "TCP"},
                             {"targetPort", int(server->port())}}}}}}});
  }

  void start_runtime() {
    std::string bin_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
    ImagePaths paths = ImagePaths::discover(bin_dir);
    KubeletConfig kc;
    kc.state_dir = opts.state_dir;
    kc.images =
        opts.images.empty() ? ImageMap::defaults(paths) : ImageMap::load(opts.images, paths);
    kc.image_store = opts.image_store;
    kc.token = pki.token;
    kc.ca_pem = pki.ca.cert_pem;
    kc.issue_token = [this](const json& pod, const std::string& audience, int64_t seconds) {
      std::string ns = pod["metadata"].value("namespace", "");
      std::string name = pod["spec"].value("serviceAccountName", "default");
      auto sa = store.get("serviceaccounts", ns, name);
      TokenSubject s;
      s.ns = ns;
      s.name = name;
      s.uid = sa ? (*sa)["metadata"].value("uid", "") : "";
      s.pod_name = pod["metadata"].value("name", "");
      s.pod_uid = pod["metadata"].value("uid", "");
      if (!audience.empty()) s.audiences = {audience};
      s.expiration_seconds = seconds;
      return tokens->issue(s);
    };
    kc.network = rest.admit_options().network;
    kc.sync_frequency = opts.sync_frequency;
    kc.token_refresh_after_s =
        std::chrono::duration_cast<std::chrono::seconds>(opts.token_refresh_after).count();
    kubelet = std::make_unique<Kubelet>(io, rest, events, std::move(kc));
    kubelet->start();
    proxy = std::make_unique<ServiceProxy>(io, store, server->port());
    proxy->start();
    dns = std::make_unique<ClusterDns>(io, store, rest.admit_options().network.dns_ip());
    dns->start();
    portforward = std::make_unique<PortForward>(
        [this](const std::string& ns, const std::string& name) {
          return kubelet ? kubelet->netns_of(ns, name) : std::string();
        },
        [this](const std::string& ns, const std::string& name) {
          auto pod = store.get("pods", ns, name);
          return pod ? (*pod)["metadata"].value("uid", "") : std::string();
        });
    logs = std::make_unique<PodLogs>(rest, *kubelet);
    api->set_logs([this](Request& req, TlsStream& s, const Route& r,
                         const std::map<std::string, std::string>& q) {
      return logs->serve(req, s, r, q);
    });
    api->set_portforward([this](Request& req, TlsStream& s, const Route& r,
                                const std::map<std::string, std::string>& q) {
      return portforward->serve(req, s, r, q);
    });
  }

  void seed_dns_service() {
    rest.create_object(
        resource_by_plural("services"),
        {{"apiVersion", "v1"},
         {"kind", "Service"},
         {"metadata",
          {{"name", "kube-dns"},
           {"namespace", "kube-system"},
           {"labels", {{"k8s-app", "kube-dns"}, {"kubernetes.io/name", "CoreDNS"}}}}},
         {"spec",
          {{"clusterIP", rest.admit_options().network.dns_ip()},
           {"ports",
            {{{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}},
             {{"name", "dns-tcp"}, {"port", 53}, {"protocol", "TCP"}}}}}}});
  }

  // Creates every object of the manifests directory, as `kubectl create -f DIR` would.
  void apply_manifests() {
    for (auto& doc : load_manifests(opts.manifests)) {
      std::string kind = doc.value("kind", "");
      const ResourceType* type = nullptr;
      for (const auto& t : resource_types()) {
        if (t.kind == kind && t.api_version() == doc.value("apiVersion", "")) type = &t;
      }
      if (!type) throw std::runtime_error("manifest kind " + kind + " is not served by kubesim");
      if (type->namespaced && doc["metadata"].value("namespace", "").empty()) {
        doc["metadata"]["namespace"] = "default";
      }
      try {
        rest.create_object(*type, doc);
      } catch (const ApiError& e) {
        throw std::runtime_error("manifest " + kind + " " + doc["metadata"].value("name", "") +
                                 ": " + e.what());
      }
    }
  }

  void write_pidfile() {
    std::ofstream f(opts.state_dir / "pid", std::ios::trunc);
    f << getpid() << "\n";
  }

  void write_kubeconfig() {
    write_pki(pki, opts.state_dir);
    std::ofstream f(opts.state_dir / "kubeconfig", std::ios::trunc);
    f << make_kubeconfig(pki, "https://127.0.0.1:" + std::to_string(server->port()));
    if (!f) throw std::runtime_error("cannot write " + (opts.state_dir / "kubeconfig").string());
  }
};

Cluster::Cluster(boost::asio::io_context& io, ClusterOptions opts)
    : impl_(std::make_unique<Impl>(io, std::move(opts))) {}

Cluster::~Cluster() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("kubesim: {}", e.what());
  }
}

void Cluster::start() {
  Impl& d = *impl_;
  std::filesystem::create_directories(d.opts.state_dir);
  if (!d.opts.runtime) {
    // No kubelet processes: pods are marked deleted at once, as the stand-in finishes them.
    d.rest.graceful_pod_delete = [](const json&) { return true; };
  }
  std::string tag = instance_tag(d.opts.state_dir);
  ClusterNetwork& network = d.rest.admit_options().network;
  network = d.opts.ip_family == IpFamily::ipv6 ? ClusterNetwork::ipv6(tag) : ClusterNetwork::ipv4();
  d.pki = make_pki({"127.0.0.1", network.kubernetes_ip()},
                   {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local"});
  d.tokens = std::make_unique<TokenIssuer>();
  d.ns_defaults = std::make_unique<NamespaceDefaults>(d.io, d.rest, d.pki.ca.cert_pem);
  d.rest.admit_options().ensure_default_service_account = [&d](const std::string& ns) {
    d.ns_defaults->ensure(ns);
  };
  d.rest.admit_options().irsa = d.opts.irsa;
  WatchSettings ws;
  ws.bookmark_interval = d.opts.bookmark_interval;
  d.api = std::make_unique<Api>(d.rest, "127.0.0.1:0", ws);
  d.api->set_tokens(d.tokens.get());
  d.api->set_faults([&d](const std::string& name, const std::map<std::string, std::string>& q,
                         const TlsStream& asking) { return d.fault(name, q, asking); });
  d.server = std::make_unique<HttpsServer>(
      d.io, TlsFiles{d.pki.server.cert_pem, d.pki.server.key_pem, d.pki.ca.cert_pem}, d.pki.token,
      [&d](Request& req, TlsStream& s, const Identity& who) { return d.api->handle(req, s, who); });
  d.server->set_token_authenticator([&d](const std::string& token) -> std::optional<Identity> {
    auto user = d.tokens->authenticate(token, d.store);
    if (!user) return std::nullopt;
    return Identity{user->user, user->groups};
  });
  d.server->listen({boost::asio::ip::make_address("127.0.0.1"), d.opts.port});
  d.seed();
  d.ns_defaults->start();
  d.seed_dns_service();
  d.controllers = std::make_unique<Controllers>(d.io, d.rest, d.events, !d.opts.runtime);
  d.controllers->start();
  d.write_kubeconfig();
  if (d.opts.runtime) {
    set_netns_instance(tag);
    std::ofstream(d.opts.state_dir / "instance", std::ios::trunc) << tag << "\n";
    d.start_runtime();
  }
  if (!d.opts.manifests.empty()) d.apply_manifests();
  d.write_pidfile();
}

void Cluster::stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  // Each part stops even when another failed to: the kubelet's teardown of processes and
  // namespaces must run whatever happened before it.
  auto step = [](const char* what, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("kubesim: stopping the {}: {}", what, e.what());
    }
  };
  step("API server", [&] {
    if (d.server) d.server->stop();
    if (d.portforward) d.portforward->thaw_all();  // a frozen one ends once its socket is gone
  });
  step("controllers", [&] {
    if (d.controllers) d.controllers->stop();
    if (d.ns_defaults) d.ns_defaults->stop();
  });
  step("service proxy", [&] {
    if (d.proxy) d.proxy->stop();
  });
  step("cluster DNS", [&] {
    if (d.dns) d.dns->stop();
  });
  step("kubelet", [&] {
    if (d.kubelet) d.kubelet->stop();
  });
  std::error_code ec;
  std::filesystem::remove(d.opts.state_dir / "pid", ec);
}

size_t Cluster::connections() const { return impl_->server ? impl_->server->connections() : 0; }

std::filesystem::path Cluster::kubeconfig() const { return impl_->opts.state_dir / "kubeconfig"; }
namespace {

// Waits until process pid has exited (a zombie counts: it runs no more code). pidfd_open
// gives an event for a process that is not our child; /proc polling is the fallback.
bool wait_exit(pid_t pid, std::chrono::seconds limit) {
  int fd = int(syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, int(std::chrono::milliseconds(limit).count()));
    close(fd);
    return n == 1;
  }
  auto gone = [pid] {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    size_t paren = line.rfind(')');
    return paren == std::string::npos || line.substr(paren + 2, 1) == "Z";
  };
  for (auto end = std::chrono::steady_clock::now() + limit;
       !gone() && std::chrono::steady_clock::now() < end;) {
    usleep(50 * 1000);
  }
  return gone();
}

}  // namespace

std::string shut_down(const std::filesystem::path& state_dir) {
  set_netns_instance(instance_tag(state_dir));
  std::string msg = "no kubesim was running for " + state_dir.string();
  std::ifstream f(state_dir / "pid");
  pid_t pid = 0;
  if (f >> pid && pid > 0) {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    if (!ec && exe.filename().string().rfind("lpk-kubesim", 0) == 0 && kill(pid, SIGTERM) == 0) {
      if (!wait_exit(pid, std::chrono::seconds(30))) {
        throw std::runtime_error("kubesim (pid " + std::to_string(pid) +
                                 ") did not stop within 30 s of SIGTERM");
      }
      msg = "stopped kubesim (pid " + std::to_string(pid) + ")";
    }
  }
  if (!list_kubesim_netns().empty()) {
    if (geteuid() != 0)
      throw std::runtime_error(
          "removing leftover namespaces needs root; run `sudo lpk-kubesim down`");
    cleanup_leftovers(state_dir);
    msg += "; removed leftovers of a crashed kubesim";
  }
  return msg;
}

uint16_t Cluster::port() const { return impl_->server ? impl_->server->port() : 0; }

}  // namespace lpk::kubesim
