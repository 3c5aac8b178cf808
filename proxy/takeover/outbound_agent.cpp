// The agent of an outbound-only session (`connect` with no --service): a Deployment of its own,
// one replica, that no Service selects. Nothing of the application is replaced; the session's
// record names this Deployment, and restoring it (at the end, by `restore`, by the repair of a
// dead session) deletes it.
#include <thread>

#include "proxy/takeover/session_objects.hpp"
#include "proxy/takeover/takeover.hpp"

namespace lpk::proxy {

using nlohmann::json;
using namespace std::chrono_literals;

TakeoverTarget Takeover::outbound_target(const std::string& ns, const std::string& session_id) {
  TakeoverTarget target;
  target.workload = {WorkloadKind::deployment, ns, outbound_deployment_name(session_id)};
  target.container.name = "lpk-agent";
  return target;
}

void Takeover::install_outbound_agent(TakeoverTarget& target, const TakeoverOptions& options,
                                      const SessionOwner& owner) {
  AgentSpec agent;
  agent.image = options.agent_image;
  agent.file_limit = options.file_limit;
  agent.dead_link_timeout = options.dead_link_timeout;
  agent.resume_grace = options.resume_grace;
  agent.session = owner.to_json().dump();
  if (!options.tunnel_secret.empty()) agent.secret_name = tunnel_secret_name(owner.id);
  target.tunnel_port = agent.tunnel_port;
  progress_.step("starting " + agent.image + " as " + target.workload.describe() +
                 " (outbound only: nothing of the application is replaced)");
  create_agent_deployment(target, options, owner,
                          outbound_deployment(target.workload.ns, owner.id, agent),
                          "a session without --service runs its agent in a Deployment of its "
                          "own");
}

void Takeover::create_agent_deployment(TakeoverTarget& target, const TakeoverOptions& options,
                                       const SessionOwner& owner, const json& body,
                                       const std::string& why) {
  const auto& ref = target.workload;
  try {
    target.object = client_.create(kube::resource_path("apps/v1", ref.ns, "deployments"), body);
  } catch (const kube::ApiError& e) {
    if (e.code != 403) throw;
    throw WorkloadError("lpk may not create deployments in namespace " + ref.ns + " (" +
                        e.what() + "); " + why + ": ask for `create` and `delete` on "
                        "deployments");
  }
  try {
    if (!options.tunnel_secret.empty()) {
      auto session = kube::text_of(kube::field(
          kube::field(kube::field(body, "metadata"), "annotations"), kSessionAnnotation));
      client_.create(kube::resource_path("v1", ref.ns, "secrets"),
                     tunnel_secret(ref, target.object, owner.id, session, options.tunnel_secret));
    }
    target.object = client_.patch(ref.path(), json{{"spec", {{"replicas", 1}}}});
  } catch (const std::exception&) {
    remove_if_present(ref.path());  // the Secret, owned by it, goes with it
    throw;
  }
}

void Takeover::remove_created_workload(const WorkloadRef& ref, const json& object,
                                       std::chrono::seconds timeout) {
  progress_.step("removing " + ref.describe() + ", which lpk session " +
                 kube::text_of(kube::field(kube::field(kube::field(object, "metadata"),
                                                       "annotations"),
                                           kCreatedBySessionAnnotation)) +
                 " created");
  // Foreground: the API server removes the ReplicaSet and the pods before the Deployment, so
  // that once it is gone nothing of the session runs. The Secret it owns goes with it.
  remove_if_present(ref.path(), "Foreground");
  remove_session_objects_of(ref, object);  // a Secret made before ownership could be set
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto pods = list_pods(ref, object).value("items", json::array());
    bool deployment_gone = false;
    try {
      client_.get(ref.path());
    } catch (const kube::ApiError& e) {
      if (e.code != 404) throw;
      deployment_gone = true;
    }
    if (deployment_gone && pods.empty()) break;
    progress_.waiting("waiting for " + ref.describe() + " and its " + std::to_string(pods.size()) +
                      " pod(s) to go");
    if (std::chrono::steady_clock::now() > deadline) {
      progress_.done();
      throw WorkloadError(ref.describe() + " was not gone within " +
                          std::to_string(timeout.count()) + " s; `kubectl get pods -n " + ref.ns +
                          " -l " + kSessionLabel + "` shows what is left");
    }
    std::this_thread::sleep_for(200ms);
  }
  progress_.step(ref.describe() + " removed");
}

}  // namespace lpk::proxy
