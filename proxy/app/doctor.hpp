#pragma once
// `lpk-proxy doctor`: checks, before anything changes, what `connect` with the same flags needs:
// the kubeconfig and its credentials, every permission connect uses in the namespace (one
// SelfSubjectAccessReview per verb), the service and its workload (with --service), the agent
// image (a warning: only a node can pull it), a free slot of the loopback pool and port 53 on its
// stub DNS address, the privilege to bind port 53, the system resolver, and sessions that died
// leaving the cluster changed. Each check is one line: pass or fail, and the fix.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kube/objects.hpp"

namespace lpk::proxy {

/// One check's outcome. `fix` is what to do when it fails; on a pass it is a warning (something
/// doctor cannot see from here) or empty.
struct DoctorCheck {
  std::string name;
  bool ok = false;
  std::string detail;
  std::string fix;
};

/// A resource connect uses in the namespace, and the verbs it uses on it.
struct Permission {
  std::string group;  ///< "" for the core group, "apps"
  std::string resource;
  std::string subresource;  ///< "portforward" for pods/portforward
  std::vector<std::string> verbs;
  std::string name() const;  ///< "pods/portforward", "deployments.apps"
};

/// What connect uses: for an outbound-only session its own Deployment; for a takeover the workload
/// of `kind` (deployments when unknown) and the objects kept beside it.
std::vector<Permission> needed_permissions(bool outbound_only, kube::WorkloadKind kind);

/// The `kubectl create role` command that grants `p` in `ns` (with a RoleBinding, the fix).
std::string grant_command(const Permission& p, const std::string& ns);

/// `ok   NAME: DETAIL`, `warn NAME: DETAIL; FIX`, or `FAIL NAME: DETAIL; fix: FIX`.
std::string check_line(const DoctorCheck& check);

/// The array of {name, ok, detail, fix} that --json prints.
nlohmann::json checks_json(const std::vector<DoctorCheck>& checks);

/// Runs the checks and prints them; returns 0 when all pass, 1 when one fails, 2 for bad flags.
int run_doctor(const std::vector<std::string>& args);

}  // namespace lpk::proxy
