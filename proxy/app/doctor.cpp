#include "proxy/app/doctor.hpp"

#include <cstdio>
#include <iostream>
#include <memory>

#include "proxy/app/connect_command.hpp"
#include "proxy/app/doctor_checks.hpp"
#include "proxy/app/options.hpp"

namespace lpk::proxy {

using nlohmann::json;

std::string Permission::name() const {
  auto text = resource + (subresource.empty() ? "" : "/" + subresource);
  return group.empty() ? text : text + "." + group;
}

std::vector<Permission> needed_permissions(bool outbound_only, kube::WorkloadKind kind) {
  // The session's own: the services it names, the agent pods it watches and forwards to, the
  // Secret holding the tunnel's secret (and the sweep of dead sessions' Secrets).
  std::vector<Permission> needed = {
      {"", "services", "", {"get", "list", "watch"}},
      {"", "pods", "", {"get", "list", "watch"}},
      {"", "pods", "portforward", {"create", "get"}},
      {"", "secrets", "", {"create", "list", "delete"}},
  };
  if (outbound_only) {
    needed.push_back({"apps", "deployments", "", {"create", "get", "patch", "delete"}});
    return needed;
  }
  // A takeover: the original template's ConfigMap, the pods a controller would not replace by
  // itself, the workload patched and put back, a Deployment's agent ReplicaSet deleted after.
  needed[1].verbs.push_back("delete");
  if (kind == kube::WorkloadKind::pod) needed[1].verbs.push_back("create");
  needed.push_back({"", "configmaps", "", {"create", "get", "delete"}});
  if (kind != kube::WorkloadKind::pod) {
    needed.push_back({"apps", kube::resource_of(kind), "", {"get", "patch", "update"}});
  }
  if (kind == kube::WorkloadKind::deployment) {
    needed.push_back({"apps", "replicasets", "", {"get", "list", "delete"}});
  }
  // The restorer (connect --orphan-timeout, on by default): its heartbeat Lease, its Job and the
  // ServiceAccount, Role and RoleBinding it runs as.
  needed.push_back({"coordination.k8s.io", "leases", "", {"create", "get", "patch", "delete"}});
  needed.push_back({"batch", "jobs", "", {"create", "delete"}});
  needed.push_back({"", "serviceaccounts", "", {"create", "delete"}});
  needed.push_back({"rbac.authorization.k8s.io", "roles", "", {"create", "delete"}});
  needed.push_back({"rbac.authorization.k8s.io", "rolebindings", "", {"create", "delete"}});
  return needed;
}

std::string grant_command(const Permission& p, const std::string& ns) {
  std::string verbs;
  for (const auto& v : p.verbs) verbs += (verbs.empty() ? "" : ",") + v;
  auto role = "lpk-" + p.resource + (p.subresource.empty() ? "" : "-" + p.subresource);
  return "kubectl create role " + role + " -n " + ns + " --verb=" + verbs +
         " --resource=" + p.name() + " && kubectl create rolebinding " + role + " -n " + ns +
         " --role=" + role + " --user=YOU";
}

std::string check_line(const DoctorCheck& check) {
  if (!check.ok) return "FAIL " + check.name + ": " + check.detail + "; fix: " + check.fix;
  if (!check.fix.empty()) return "warn " + check.name + ": " + check.detail + "; " + check.fix;
  return "ok   " + check.name + ": " + check.detail;
}

json checks_json(const std::vector<DoctorCheck>& checks) {
  auto out = json::array();
  for (const auto& c : checks) {
    out.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}, {"fix", c.fix}});
  }
  return out;
}

namespace {

void append(std::vector<DoctorCheck>& to, std::vector<DoctorCheck> more) {
  to.insert(to.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
}

/// The checks that need the cluster: nothing past a check that fails for all of them (a
/// kubeconfig that does not load, credentials refused), which would only repeat its failure.
std::vector<DoctorCheck> cluster_checks(const DoctorOptions& options,
                                        std::optional<kube::RestConfig>& config) {
  std::vector<DoctorCheck> checks{check_kubeconfig(options.kube, config)};
  if (!config) return checks;
  std::unique_ptr<kube::Client> client;
  try {
    client = std::make_unique<kube::Client>(*config);
  } catch (const std::exception& e) {
    checks.push_back({"credentials", false, e.what(),
                      "fix the user of context " + config->context_name + " in the kubeconfig"});
    return checks;
  }
  checks.push_back(check_credentials(*client));
  if (!checks.back().ok) return checks;
  const auto& ns = config->namespace_;
  auto kind = kube::WorkloadKind::deployment;
  std::optional<DoctorCheck> service;
  if (!options.service.empty()) service = check_service(*client, options, ns, kind);
  append(checks, check_permissions(*client, ns, needed_permissions(options.service.empty(), kind)));
  if (service) checks.push_back(*service);
  checks.push_back(check_agent_image(*client, options, ns));
  return checks;
}

std::vector<DoctorCheck> local_checks(const DoctorOptions& options,
                                      const std::optional<kube::RestConfig>& config) {
  // Without a cluster the slot is still checked, for the key connect would hash best known.
  std::vector<DoctorCheck> checks = check_slot_and_port(options, config ? slot_key(*config) : "");
  checks.push_back(check_bind_privilege(options));
  checks.push_back(check_system_resolver(options, config ? config->namespace_ : "default"));
  checks.push_back(check_dead_sessions());
  return checks;
}

int print_checks(const std::vector<DoctorCheck>& checks, bool as_json) {
  int failed = 0;
  for (const auto& c : checks) failed += c.ok ? 0 : 1;
  if (as_json) {
    std::cout << checks_json(checks).dump(2) << "\n";
  } else {
    for (const auto& c : checks) std::cout << check_line(c) << "\n";
    std::cout << (failed == 0 ? "doctor: all " + std::to_string(checks.size()) +
                                    " checks pass; connect should work"
                              : "doctor: " + std::to_string(failed) + " of " +
                                    std::to_string(checks.size()) +
                                    " checks fail; connect would not work until they are fixed")
              << "\n";
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

int run_doctor(const std::vector<std::string>& args) {
  DoctorOptions options;
  try {
    options = parse_doctor_options(args);
  } catch (const std::exception& e) {
    return fail(std::string(e.what()) + " (see lpk-proxy doctor --help)", 2);
  }
  std::optional<kube::RestConfig> config;
  auto checks = cluster_checks(options, config);
  append(checks, local_checks(options, config));
  return print_checks(checks, options.json);
}

}  // namespace lpk::proxy
