#pragma once
// The checks of `lpk-proxy doctor` (app/doctor.hpp), each one line or a few. Blocking calls
// through kube::Client and local probes (binding a socket for an instant, /proc); main thread.

#include <optional>
#include <string>
#include <vector>

#include "kube/client.hpp"
#include "proxy/app/doctor.hpp"
#include "proxy/app/options.hpp"

namespace lpk::proxy {

/// Loads the kubeconfig as connect would; `loaded` gets it when it loads.
DoctorCheck check_kubeconfig(const kube::LoadOptions& options,
                             std::optional<kube::RestConfig>& loaded);

/// One cheap authenticated call (a SelfSubjectAccessReview): the server is reached and takes
/// the credentials.
DoctorCheck check_credentials(kube::Client& client);

/// One line per resource: every verb of it allowed in `ns`, else the ones denied.
std::vector<DoctorCheck> check_permissions(kube::Client& client, const std::string& ns,
                                           const std::vector<Permission>& needed);

/// The service, its pods, their workload and container, as connect's Takeover::locate finds
/// them (its refusals are the failures), and no live session holding the workload. `kind`
/// gets the workload's kind when it is found.
DoctorCheck check_service(kube::Client& client, const DoctorOptions& options, const std::string& ns,
                          kube::WorkloadKind& kind);

/// Whether the cluster pulls and starts the agent image: a pod of it (its entrypoint with
/// --help, never restarted, deleted at once; doctor_image.cpp), read until it runs or ends, or
/// its node reports ErrImagePull and the like. Passes, saying so, when creating pods is refused.
DoctorCheck check_agent_image(kube::Client& client, const DoctorOptions& options,
                              const std::string& ns);

/// A slot of --pool no session holds (`key` as connect hashes it), and port 53 (or --dns) free
/// on its stub DNS address.
std::vector<DoctorCheck> check_slot_and_port(const DoctorOptions& options, const std::string& key);

/// Root or cap_net_bind_service when the stub's port is privileged.
DoctorCheck check_bind_privilege(const DoctorOptions& options);

/// The machine's resolver: its mode and state, and with --resolver whether connect may take it.
DoctorCheck check_system_resolver(const DoctorOptions& options, const std::string& ns);

/// Sessions of this machine that died leaving the cluster changed.
DoctorCheck check_dead_sessions();

}  // namespace lpk::proxy
