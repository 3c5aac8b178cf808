#include "proxy/app/doctor_checks.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "dns/system_resolver.hpp"
#include "proxy/app/connect_command.hpp"
#include "proxy/connect/session_resolver.hpp"
#include "proxy/forward/address_pool.hpp"
#include "proxy/forward/slot_claim.hpp"
#include "proxy/forward/stub_dns.hpp"
#include "proxy/takeover/takeover.hpp"

namespace lpk::proxy {

using nlohmann::json;

namespace {

bool access_allowed(kube::Client& client, const std::string& ns, const Permission& p,
                    const std::string& verb) {
  json attributes = {{"namespace", ns},
                     {"verb", verb},
                     {"group", p.group},
                     {"resource", p.resource},
                     {"subresource", p.subresource}};
  json review = {{"apiVersion", "authorization.k8s.io/v1"},
                 {"kind", "SelfSubjectAccessReview"},
                 {"spec", {{"resourceAttributes", attributes}}}};
  auto answer = client.create("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review);
  return answer.value("status", json::object()).value("allowed", false);
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

/// A WorkloadError's sentence "what is wrong; what to do" as detail and fix.
DoctorCheck failed_with_sentence(const std::string& name, const std::string& sentence,
                                 const std::string& fallback_fix) {
  auto split = sentence.find("; ");
  if (split == std::string::npos) return {name, false, sentence, fallback_fix};
  return {name, false, sentence.substr(0, split), sentence.substr(split + 2)};
}

/// `found`, unless another session holds the workload: then why connect would refuse it.
DoctorCheck held_by_session(const TakeoverTarget& target, DoctorCheck found) {
  auto annotations = target.object["metadata"].value("annotations", json::object());
  if (!annotations.contains(kSessionAnnotation)) return found;
  auto owner = SessionOwner::from_json(
      json::parse(annotations.value(kSessionAnnotation, "{}"), nullptr, false));
  const auto what = target.workload.describe();
  if (owner.alive_here()) {
    return {"service", false,
            what + " is connected by lpk session " + owner.id + " (pid " +
                std::to_string(owner.pid) + " on this machine)",
            "end that session first"};
  }
  if (!owner.host.empty() && !owner.on_this_host()) {
    return {"service", false,
            what + " is changed by lpk session " + owner.id + " on host " + owner.host,
            "if that session is gone, run `lpk-proxy restore --all -n " + target.workload.ns + "`"};
  }
  found.detail += "; lpk session " + owner.id + " left it changed and is gone: connect repairs it";
  return found;
}

std::string endpoint_text(const boost::asio::ip::udp::endpoint& e) {
  auto address = e.address().to_string();
  if (e.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(e.port());
}

boost::asio::ip::udp::endpoint stub_endpoint(boost::asio::ip::network_v4 slot) {
  return {AddressPool::preferred(slot, AddressPool::kStubDnsName), 53};
}

/// The port 53 line without --dns: a slot whose stub DNS address is free, as connect picks.
DoctorCheck check_stub_port(boost::asio::ip::network_v4 pool, const std::string& key) {
  auto preferred = AddressPool::slot(pool, AddressPool::preferred_slot(pool, key));
  auto claim = SlotClaim::claim(pool, key, stub_dns_port_free);
  if (!claim) {
    return {"port 53", false,
            "port 53 is in use on the stub DNS address of every free slot of --pool " +
                pool.to_string() + " (" + endpoint_text(stub_endpoint(preferred)) +
                " for this cluster and namespace)",
            "find the program with `ss -lunp 'sport = :53'` and stop it, or give connect "
            "--dns ADDR:PORT or a larger --pool"};
  }
  auto detail = "the stub DNS can listen on " + endpoint_text(stub_endpoint(claim->slot()));
  if (claim->slot() != preferred) {
    detail += " (slot " + preferred.to_string() +
              ", where this cluster and namespace hash to, is "
              "taken: the session's addresses differ from the usual ones)";
  }
  return {"port 53", true, detail, ""};
}

/// The port line with --dns: connect checks exactly that endpoint.
DoctorCheck check_explicit_dns(const boost::asio::ip::udp::endpoint& dns) {
  auto free = StubDns::check_available(dns);
  // Lacking the privilege is the privilege line's failure, not this one's.
  if (free || free.error().code == boost::system::errc::permission_denied) {
    return {"port " + std::to_string(dns.port()), true, "--dns " + endpoint_text(dns) + " is free",
            ""};
  }
  return {"port " + std::to_string(dns.port()), false, free.error().message,
          "stop the program holding it (`ss -lunp`), or choose another --dns address or port"};
}

int unprivileged_port_start() {
  std::ifstream in("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  int start = 1024;
  in >> start;
  return in ? start : 1024;
}

/// Whether this process may bind privileged ports: CapEff holds CAP_NET_BIND_SERVICE (bit 10),
/// which root has unless it was dropped.
bool has_net_bind_service() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    auto caps = std::stoull(line.substr(7), nullptr, 16);
    return (caps >> 10) & 1;
  }
  return ::geteuid() == 0;
}

/// `resolver status`'s first lines (mode, installed or not), as one phrase.
std::string resolver_state(const dns::ResolverConfig& config) {
  std::ostringstream out, err;
  dns::resolver_status(config, out, err);
  std::istringstream lines(out.str());
  std::string phrase;
  std::string line;
  for (int i = 0; i < 2 && std::getline(lines, line); ++i) phrase += (i ? ", " : "") + line;
  return phrase;
}

}  // namespace

DoctorCheck check_kubeconfig(const kube::LoadOptions& options,
                             std::optional<kube::RestConfig>& loaded) {
  try {
    loaded = kube::load_config(options);
  } catch (const std::exception& e) {
    return failed_with_sentence("kubeconfig", e.what(),
                                "`kubectl config get-contexts` lists the contexts: pass one with "
                                "--context, or the file with --kubeconfig");
  }
  return {"kubeconfig", true,
          "context " + loaded->context_name + ", server " + loaded->cluster.server +
              ", namespace " + loaded->namespace_,
          ""};
}

DoctorCheck check_credentials(kube::Client& client) {
  const auto& config = client.config();
  try {
    access_allowed(client, config.namespace_, {"", "services", "", {}}, "get");
  } catch (const kube::ApiError& e) {
    if (e.code == 0) {
      return {"credentials", false, "cannot reach " + config.cluster.server + ": " + e.what(),
              "check that the cluster runs and the kubeconfig's server is right (`kubectl "
              "cluster-info`)"};
    }
    if (e.code == 401) {
      return failed_with_sentence(
          "credentials", e.what(),
          "log in again or renew the token of context " + config.context_name);
    }
    // Any other answer came from a server that knew who was asking.
  }
  return {"credentials", true, "the API server at " + config.cluster.server + " accepts them", ""};
}

std::vector<DoctorCheck> check_permissions(kube::Client& client, const std::string& ns,
                                           const std::vector<Permission>& needed) {
  std::vector<DoctorCheck> checks;
  for (const auto& p : needed) {
    DoctorCheck check{"permission " + p.name(), true, "", ""};
    std::vector<std::string> denied;
    try {
      for (const auto& verb : p.verbs) {
        if (!access_allowed(client, ns, p, verb)) denied.push_back(verb);
      }
    } catch (const kube::ApiError& e) {
      checks.push_back({check.name, false, e.what(),
                        "check that the API server answers "
                        "SelfSubjectAccessReviews"});
      continue;
    }
    check.ok = denied.empty();
    check.detail =
        (check.ok ? joined(p.verbs) : "denied: " + joined(denied)) + " in namespace " + ns;
    if (!check.ok) check.fix = "ask for a Role granting it: " + grant_command(p, ns);
    checks.push_back(check);
  }
  return checks;
}

DoctorCheck check_service(kube::Client& client, const DoctorOptions& options, const std::string& ns,
                          kube::WorkloadKind& kind) {
  console::Progress quiet(false);
  Takeover takeover(client, quiet);
  TakeoverOptions wanted;
  wanted.service = options.service;
  wanted.ns = ns;
  wanted.container = options.container;
  wanted.agent_image = options.agent_image;
  try {
    auto target = takeover.locate(wanted);
    kind = target.workload.kind;
    DoctorCheck found{"service", true,
                      "service " + options.service + " runs in " + target.workload.describe() +
                          "; connect replaces its container " + target.container.name,
                      ""};
    return held_by_session(target, found);
  } catch (const WorkloadError& e) {
    return failed_with_sentence("service", e.what(), "connect to a service that selects pods");
  } catch (const kube::ApiError& e) {
    return {"service", false, e.what(), "see the permission lines above"};
  }
}

std::vector<DoctorCheck> check_slot_and_port(const DoctorOptions& options, const std::string& key) {
  auto claim = SlotClaim::claim(options.pool, key);
  if (!claim) {
    return {{"loopback pool", false,
             "every address slot of --pool " + options.pool.to_string() +
                 " is held by another lpk session",
             "end one, or give a larger --pool"}};
  }
  DoctorCheck pool{
      "loopback pool", true,
      "slot " + claim->slot().to_string() + " of " + options.pool.to_string() + " is free", ""};
  claim->release();
  return {pool,
          options.dns ? check_explicit_dns(*options.dns) : check_stub_port(options.pool, key)};
}

DoctorCheck check_bind_privilege(const DoctorOptions& options) {
  const int port = options.dns ? options.dns->port() : 53;
  const int start = unprivileged_port_start();
  const std::string name = "cap_net_bind_service";
  if (port >= start) {
    return {name, true, "port " + std::to_string(port) + " needs no privilege", ""};
  }
  if (has_net_bind_service()) {
    return {name, true, ::geteuid() == 0 ? "running as root" : "lpk-proxy has it", ""};
  }
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  auto grant = "run as root, or grant it once: sudo setcap cap_net_bind_service=+ep " +
               (self.empty() ? std::string("$(command -v lpk-proxy)") : self);
  // An explicit --dns must be bound as given; without one the stub takes another port, which
  // the session's child still uses, so connect works, with less.
  if (options.dns) {
    return {name, false, "--dns port " + std::to_string(port) + " needs root or " + name, grant};
  }
  return {name, true,
          "without it the stub DNS cannot take port 53 and listens on another port: the child of "
          "`connect -- COMMAND` still resolves cluster names, other programs and --resolver do not",
          grant};
}

DoctorCheck check_system_resolver(const DoctorOptions& options, const std::string& ns) {
  dns::ResolverConfig config;
  config.ns = ns;
  const auto holder = SessionResolver::held_by();
  const auto state = resolver_state(config);
  const std::string name = "system resolver";
  if (!options.system_resolver) {
    return {name, true,
            state + (holder.empty() ? "" : ", held by lpk session " + holder) +
                "; connect without --resolver leaves it alone",
            ""};
  }
  if (!holder.empty()) {
    return {name, false, "lpk session " + holder + " has the system resolver",
            "end that session, or connect without --resolver"};
  }
  if (dns::detect_mode(config) == "resolv.conf" && ::access(config.resolv_conf.c_str(), W_OK)) {
    return {name, false, config.resolv_conf + " is not writable by this user",
            "run as root, or connect without --resolver"};
  }
  return {name, true, state + "; connect --resolver points it at the session's stub", ""};
}

DoctorCheck check_dead_sessions() {
  std::vector<std::string> left;
  std::string fix;
  for (const auto& r : SessionRecord::load_all()) {
    if (!r.owner.on_this_host() || r.owner.alive_here()) continue;
    left.push_back("session " + r.owner.id + " (pid " + std::to_string(r.owner.pid) + ") left " +
                   r.workload.describe() + " changed");
    if (!fix.empty()) continue;
    fix = "run `lpk-proxy restore" + (r.kubeconfig.empty() ? "" : " --kubeconfig " + r.kubeconfig) +
          (r.context.empty() ? "" : " --context " + r.context) + "`";
  }
  if (left.empty()) return {"dead sessions", true, "none left the cluster changed", ""};
  return {"dead sessions", false, joined(left), fix};
}

}  // namespace lpk::proxy
