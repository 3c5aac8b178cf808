#include "proxy/app/connect_command.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <iostream>
#include <set>
#include <cstdio>

#include "proxy/app/options.hpp"
#include "proxy/app/project_file.hpp"
#include "proxy/connect/session.hpp"
#include "proxy/connect/session_resolver.hpp"
#include "proxy/control/logging.hpp"
#include "proxy/forward/slot_claim.hpp"
#include "proxy/forward/stub_dns.hpp"
#include "proxy/takeover/heartbeat.hpp"
#include "proxy/takeover/restorer.hpp"
#include "proxy/takeover/takeover.hpp"
#include "proxy/tunnel/handshake.hpp"

namespace lpk::proxy {

namespace {

// Set by SIGINT/SIGTERM/SIGHUP while no io_context handles them (rollout waits, restore).
std::atomic<bool> g_interrupted{false};

void note_interrupt(int) { g_interrupted = true; }

void catch_interrupts() {
  g_interrupted = false;
  struct sigaction action {};
  action.sa_handler = note_interrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGHUP, &action, nullptr);
}

/// Puts the workload back; says so if it cannot, with the command that finishes the job.
bool restore_or_explain(Takeover& takeover, const SessionRecord& record,
                        std::chrono::seconds timeout) {
  try {
    // A Ctrl-C now stops the waiting only; the restore itself is sent first.
    catch_interrupts();
    takeover.set_cancel(&g_interrupted);
    takeover.restore(record.workload, timeout);
    // Also when the workload never changed (a failure between the Secret and the patch).
    takeover.remove_tunnel_secret(record.workload.ns, record.owner.id);
    takeover.remove_restorer(record.workload.ns, record.owner.id);
    record.erase();
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "lpk-proxy: restoring %s: %s; run `lpk-proxy restore` to finish it\n",
                 record.workload.describe().c_str(), e.what());
    return false;
  }
}

}  // namespace

std::string slot_key(const kube::RestConfig& config) {
  return config.cluster.server + " " + config.namespace_;
}

bool stub_dns_port_free(boost::asio::ip::network_v4 slot) {
  boost::asio::ip::udp::endpoint dns(AddressPool::preferred(slot, AddressPool::kStubDnsName), 53);
  auto free = StubDns::check_available(dns);
  return free || free.error().code != boost::asio::error::address_in_use;
}

namespace {

/// The kube client for `options`, or nullptr after printing why (exit code 2).
std::unique_ptr<kube::Client> connect_client(const kube::LoadOptions& options) {
  try {
    return std::make_unique<kube::Client>(kube::load_config(options));
  } catch (const std::exception& e) {
    fail(e.what(), 2);
    return nullptr;
  }
}

/// Every `--local-port LOCAL:REMOTE` must name a port the replaced container serves: a typo
/// would otherwise leave that traffic refused without a word.
void check_inbound_ports(const InboundRoutes& inbound, const TakeoverTarget& target) {
  std::string served;
  std::set<std::uint16_t> ports;
  for (const auto& r : target.container.routes) {
    if (ports.insert(r.container_port).second) {
      served += (served.empty() ? "" : ", ") + std::to_string(r.container_port);
    }
  }
  for (const auto& [remote, local] : inbound.by_remote) {
    if (ports.count(remote)) continue;
    throw WorkloadError("--local-port " + std::to_string(local) + ":" + std::to_string(remote) +
                        ": container " + target.container.name + " of " +
                        target.workload.describe() + " serves no port " + std::to_string(remote) +
                        " (its service ports reach: " + (served.empty() ? "none" : served) + ")");
  }
}

/// The local ports `service`'s inbound traffic lands on: its --local-port, else its container's
/// port numbers (what ConnectSession does when --local-port says nothing).
std::set<std::uint16_t> local_ports_of(const ServicePlan& service) {
  std::set<std::uint16_t> ports;
  if (service.inbound.any_port) ports.insert(*service.inbound.any_port);
  for (const auto& [remote, local] : service.inbound.by_remote) ports.insert(local);
  if (!service.inbound.any_port && service.inbound.by_remote.empty()) {
    for (const auto& r : service.target.container.routes) ports.insert(r.container_port);
  }
  return ports;
}

/// Two services whose inbound traffic lands on one local port, or that are one workload,
/// would mix their traffic: refused before anything changes.
void check_services_distinct(const std::vector<ServicePlan>& services) {
  std::map<std::uint16_t, std::string> port_owner;
  std::map<std::string, std::string> workload_owner;
  for (const auto& s : services) {
    auto workload = s.target.workload.describe();
    if (auto [it, fresh] = workload_owner.emplace(workload, s.service); !fresh) {
      throw WorkloadError("services " + it->second + " and " + s.service + " both run in " +
                          workload + "; give only one of them");
    }
    for (auto port : local_ports_of(s)) {
      if (auto [it, fresh] = port_owner.emplace(port, s.service); !fresh) {
        throw WorkloadError("services " + it->second + " and " + s.service +
                            " would both send inbound traffic to local port " +
                            std::to_string(port) + "; give each its own with --local-port " +
                            s.service + ":LOCAL:REMOTE");
      }
    }
  }
}

/// One service of the session on the cluster side: what the takeover is asked for, the crash
/// record and the heartbeat. Each service has a session owner of its own (the session's id for
/// the first, ID-2, ID-3... for the others), so that its record, ConfigMap, Secret, restorer
/// Job and Lease are exactly those of a one-service session, which `restore`, the repair of a
/// dead session and the in-cluster restorer already handle one workload at a time.
struct Unit {
  ServicePlan* service = nullptr;
  TakeoverOptions wanted;
  SessionRecord record;
  std::optional<Heartbeat> heartbeat;
};

std::string unit_id(const std::string& session_id, std::size_t index) {
  return index == 0 ? session_id : session_id + "-" + std::to_string(index + 1);
}

/// What the takeover of `service` is asked for, from the command line and the plan.
TakeoverOptions takeover_options(const ConnectOptions& options, const SessionPlan& plan,
                                 const std::string& service) {
  TakeoverOptions wanted{service,                   plan.ns,              options.container,
                         options.agent_image,       options.file_limit,   options.timeout,
                         options.dead_link_timeout, options.resume_grace, plan.secret,
                         options.orphan_timeout,    options.keep_image,      {}};
  if (options.route_header) wanted.route = parse_route_header(*options.route_header, plan.session_id);
  return wanted;
}

/// "service NAME: " before a message when the session has several, so that it names which.
std::string naming(const SessionPlan& plan, const ServicePlan& service, const std::string& what) {
  return plan.services.size() > 1 ? "service " + service.service + ": " + what : what;
}

/// Finds every workload and checks the local choices against them, then settles earlier
/// sessions' leftovers and writes each service's record, all before anything changes. Throws
/// with one sentence naming the service.
std::vector<Unit> prepare_takeovers(Takeover& takeover, SessionPlan& plan,
                                    const ConnectOptions& options) {
  std::vector<Unit> units(plan.services.size());
  for (std::size_t i = 0; i < units.size(); ++i) {
    auto& service = plan.services[i];
    units[i].service = &service;
    units[i].wanted = takeover_options(options, plan, service.service);
    try {
      service.target = units[i].wanted.route
                           ? takeover.routed_target(units[i].wanted, unit_id(plan.session_id, i))
                           : takeover.locate(units[i].wanted);
      check_inbound_ports(service.inbound, service.target);
    } catch (const std::exception& e) {
      throw WorkloadError(naming(plan, service, e.what()));
    }
  }
  check_services_distinct(plan.services);
  for (std::size_t i = 0; i < units.size(); ++i) {
    auto& target = plan.services[i].target;
    if (auto warning = gitops_warning(target.workload, target.object); !warning.empty()) {
      std::fprintf(stderr, "lpk-proxy: warning: %s\n", warning.c_str());
    }
    // A routed session changes no workload of the application: nothing earlier to settle.
    if (!target.route) takeover.settle_earlier_session(target);
    units[i].record = {SessionOwner::current(unit_id(plan.session_id, i)), target.workload,
                       options.kube.kubeconfig, options.kube.context};
    units[i].record.save();
  }
  return units;
}

/// An outbound-only session (no --service): its own agent Deployment is the workload its record
/// names, so that every way a session ends (or is repaired) deletes it.
std::vector<Unit> prepare_outbound(Takeover& takeover, SessionPlan& plan,
                                   const ConnectOptions& options) {
  takeover.remove_secrets_of_dead_sessions(plan.ns);
  plan.services.assign(1, ServicePlan{});
  plan.services[0].target = takeover.outbound_target(plan.ns, plan.session_id);
  std::vector<Unit> units(1);
  units[0].service = &plan.services[0];
  units[0].wanted = takeover_options(options, plan, "");
  units[0].record = {SessionOwner::current(plan.session_id), plan.services[0].target.workload,
                     options.kube.kubeconfig, options.kube.context};
  units[0].record.save();
  return units;
}

/// Puts every unit back, the last first; false when one could not be.
bool restore_units(Takeover& takeover, std::vector<Unit>& units, std::chrono::seconds timeout) {
  bool all = true;
  for (auto it = units.rbegin(); it != units.rend(); ++it) {
    it->heartbeat.reset();  // before the restore deletes the Lease
    all = restore_or_explain(takeover, it->record, timeout) && all;
  }
  return all;
}

/// Replaces every service's container (or starts the outbound agent), then waits for all the
/// rollouts, which run side by side in the cluster. On failure: says why, naming the service,
/// restores what was done, false.
bool start_agents(Takeover& takeover, kube::Client& client, SessionPlan& plan,
                  std::vector<Unit>& units, const ConnectOptions& options, bool outbound_only) {
  Unit* current = nullptr;
  try {
    for (auto& unit : units) {
      current = &unit;
      // Renews the Lease from its creation in install_agent on (the rollout may take longer
      // than the orphan timeout) until the restore; after a kill -9 the restorer takes over.
      // An outbound-only session replaces nothing: it has no restorer.
      if (!outbound_only && options.orphan_timeout.count() > 0) {
        unit.heartbeat.emplace(client, plan.ns, heartbeat_lease_name(unit.record.owner.id),
                               Heartbeat::interval_for(options.orphan_timeout)).start();
      }
      auto& target = unit.service->target;
      if (outbound_only) {
        takeover.install_outbound_agent(target, unit.wanted, unit.record.owner);
      } else if (target.route) {
        takeover.install_routed_agent(target, unit.wanted, unit.record.owner);
      } else {
        takeover.install_agent(target, unit.wanted, unit.record.owner);
      }
    }
    for (auto& unit : units) {
      current = &unit;
      unit.service->agent_pods = takeover.wait_for_agents(unit.service->target, unit.wanted);
    }
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-proxy: %s\n", naming(plan, *current->service, e.what()).c_str());
    restore_units(takeover, units, options.timeout);
    return false;
  }
}

/// Serves the session; a failure is printed and becomes exit code 1.
int serve_session(SessionPlan& plan, kube::Client& client) {
  try {
    ConnectSession session(plan, client);
    return session.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-proxy: %s\n", e.what());
    return 1;
  }
}

/// This session's slot of --pool: the one its cluster and namespace hash to (so that its
/// addresses are the same every time), else the next one that no other session holds and
/// whose stub DNS address no other program holds on port 53. Held until the session ends.
std::optional<SlotClaim> claim_slot(const ConnectOptions& options, const kube::RestConfig& config) {
  SlotClaim::Usable usable;
  if (!options.dns) usable = stub_dns_port_free;
  return SlotClaim::claim(options.pool, slot_key(config), usable);
}

/// The session's local choices from the command line.
SessionPlan plan_from(const ConnectOptions& options) {
  SessionPlan plan;
  for (const auto& spec : options.services) {
    ServicePlan service;
    service.service = spec.name;
    service.inbound = spec.inbound;
    service.run = spec.run;
    service.env_file = spec.env_file;
    plan.services.push_back(std::move(service));
  }
  plan.extra_namespaces = options.extra_namespaces;
  plan.pool = options.pool;
  plan.dns = options.dns;
  plan.zone = options.zone;
  plan.resolv_conf = options.resolv_conf;
  plan.system_resolver = options.system_resolver;
  plan.env_overrides = options.env;
  plan.skip_files = options.skip_files;
  plan.command = options.command;
  plan.dead_link_timeout = options.dead_link_timeout;
  plan.resume_grace = options.resume_grace;
  plan.session_id = tunnel::to_hex(tunnel::random_session_id()).substr(0, 8);
  // Without one, anything that reaches the agent's port (a sidecar of the pod, anyone allowed
  // pods/portforward) could open a tunnel or take this one over.
  plan.secret = options.secret.empty() ? tunnel::random_secret() : options.secret;
  return plan;
}

/// "service api" or "services api, worker".
std::string service_names(const SessionPlan& plan) {
  std::string names;
  for (const auto& s : plan.services) names += (names.empty() ? "" : ", ") + s.service;
  return (plan.services.size() > 1 ? "services " : "service ") + names;
}

/// What keeps the session from running on this machine ("" when nothing does): an explicit
/// --dns address that is taken.
std::string local_resource_problem(const ConnectOptions& options) {
  if (options.system_resolver) {
    if (auto holder = SessionResolver::held_by(); !holder.empty()) {
      return "--resolver: lpk session " + holder + " has the system resolver; end it, or "
             "connect without --resolver";
    }
  }
  if (options.dns) {
    if (auto free = StubDns::check_available(*options.dns); !free) {
      return free.error().message + "; choose another --dns address or port";
    }
  }
  return {};
}

/// connect's options from the command line over lpk.yaml, or nothing after saying why. Sets
/// the form of stdout (--output) before anything is printed.
std::optional<ConnectOptions> connect_options(const std::vector<std::string>& args) {
  std::optional<std::filesystem::path> project;
  ConnectOptions options;
  try {
    options = parse_connect_options(with_project_file(args, project));
  } catch (const std::exception& e) {
    fail(std::string(e.what()) + " (see lpk-proxy connect --help)", 2);
    return std::nullopt;
  }
  tunnel::set_json_lines(options.json_output);
  if (project) console::print_line(console::kProjectFile, project->string());
  return options;
}

}  // namespace

int run_connect(const std::vector<std::string>& args) {
  auto parsed = connect_options(args);
  if (!parsed) return 2;
  const auto& options = *parsed;
  // Local resources are checked before anything of the cluster changes.
  if (auto problem = local_resource_problem(options); !problem.empty()) return fail(problem);
  auto client = connect_client(options.kube);
  if (!client) return 2;
  auto slot = claim_slot(options, client->config());
  if (!slot) {
    return fail("every address slot of --pool " + options.pool.to_string() +
                " is held by another lpk session or program; end one, or give a larger --pool");
  }
  SessionPlan plan;
  try {
    plan = plan_from(options);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  plan.pool = slot->slot();
  plan.interrupted = &g_interrupted;
  plan.ns = client->config().namespace_;
  auto log_path = setup_logging(plan.session_id, options.log_level, options.json_logs);
  auto progress = console::Progress::for_stdout();
  const bool outbound_only = options.services.empty();
  progress.step("lpk session " + plan.session_id + ": connecting " +
                (outbound_only ? "to namespace " + plan.ns + " (outbound only)"
                               : service_names(plan) + " in namespace " + plan.ns) +
                (log_path.empty() ? "" : " (logs: " + log_path + ")"));
  catch_interrupts();
  Takeover takeover(*client, progress);
  takeover.set_cancel(&g_interrupted);
  std::vector<Unit> units;
  try {
    units = outbound_only ? prepare_outbound(takeover, plan, options)
                          : prepare_takeovers(takeover, plan, options);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (!start_agents(takeover, *client, plan, units, options, outbound_only)) return 1;
  int code = serve_session(plan, *client);
  if (!restore_units(takeover, units, options.timeout)) return code ? code : 1;
  std::string workloads;
  for (const auto& unit : units) {
    workloads += (workloads.empty() ? "" : ", ") + unit.record.workload.describe();
  }
  const bool created = outbound_only || options.route_header.has_value();
  progress.step("session " + plan.session_id + " ended; " + workloads +
                (created ? (units.size() > 1 ? " are removed" : " is removed")
                         : units.size() > 1 ? " are as they were"
                                            : " is as it was"));
  return code;
}

namespace {

/// What restore should put back: the records of this machine's dead sessions and, with --all,
/// every workload carrying lpk's annotation.
std::vector<SessionRecord> restore_todo(Takeover& takeover, const RestoreOptions& options,
                                        const std::string& ns) {
  std::vector<SessionRecord> todo;
  for (auto& record : SessionRecord::load_all()) {
    if (record.owner.alive_here()) continue;  // a running session restores itself
    todo.push_back(record);
  }
  if (options.all) {
    for (const auto& ref : takeover.changed_workloads(options.all_namespaces ? "" : ns)) {
      SessionRecord r;
      r.workload = ref;
      todo.push_back(r);
    }
  }
  return todo;
}

/// What sessions leave besides a workload: routes of sessions whose Deployment is gone (with
/// --all) and the Secrets of sessions that died before they changed anything. The number of
/// failures, each said on stderr.
int remove_leftovers(Takeover& takeover, const RestoreOptions& options, const std::string& ns,
                     const std::vector<SessionRecord>& todo) {
  int failures = 0;
  if (options.all) {
    try {
      takeover.prune_routes(options.all_namespaces ? "" : ns);
    } catch (const std::exception& e) {
      ++failures;
      std::fprintf(stderr, "lpk-proxy: putting back services routed by ended sessions: %s\n",
                   e.what());
    }
  }
  // Secrets of sessions that died before they changed a workload have no record to find them by.
  std::set<std::string> namespaces{ns};
  for (const auto& record : todo) namespaces.insert(record.workload.ns);
  for (const auto& each : namespaces) {
    try {
      takeover.remove_secrets_of_dead_sessions(each);
    } catch (const std::exception& e) {
      ++failures;
      std::fprintf(stderr, "lpk-proxy: removing lpk's Secrets of ended sessions in %s: %s\n",
                   each.c_str(), e.what());
    }
  }
  return failures;
}

}  // namespace

int run_restore(const std::vector<std::string>& args) {
  RestoreOptions options;
  try {
    options = parse_restore_options(args);
  } catch (const std::exception& e) {
    return fail(std::string(e.what()) + " (see lpk-proxy restore --help)", 2);
  }
  auto client = connect_client(options.kube);
  if (!client) return 2;
  auto progress = console::Progress::for_stdout();
  Takeover takeover(*client, progress);
  catch_interrupts();
  takeover.set_cancel(&g_interrupted);
  int failures = 0;
  int restored = 0;
  std::vector<SessionRecord> todo;
  try {
    todo = restore_todo(takeover, options, client->config().namespace_);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  for (const auto& record : todo) {
    try {
      if (takeover.restore(record.workload, options.timeout, options.force)) ++restored;
      if (!record.owner.id.empty()) {
        takeover.remove_tunnel_secret(record.workload.ns, record.owner.id);
        takeover.remove_restorer(record.workload.ns, record.owner.id);
        record.erase();
      }
    } catch (const std::exception& e) {
      ++failures;
      std::fprintf(stderr, "lpk-proxy: restoring %s: %s\n", record.workload.describe().c_str(),
                   e.what());
    }
  }
  failures += remove_leftovers(takeover, options, client->config().namespace_, todo);
  // A session that pointed the machine's resolver at its stub (connect --resolver) and died.
  if (!SessionResolver::repair_dead(std::cout, std::cerr)) ++failures;
  progress.step(restored == 0 && failures == 0 ? "nothing to restore"
                                               : "restored " + std::to_string(restored) +
                                                     " workload(s)");
  return failures ? 1 : 0;
}

}  // namespace lpk::proxy
