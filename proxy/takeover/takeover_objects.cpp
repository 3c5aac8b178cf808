// Takeover's handling of the objects a session creates beside the workload (the original's
// ConfigMap, the tunnel Secret; session_objects.hpp builds them): creation before the workload
// changes, reading the original back, deletion once it is restored or its session is gone.
#include <optional>

#include "proxy/takeover/session_objects.hpp"
#include "proxy/takeover/takeover.hpp"

namespace lpk::proxy {

using nlohmann::json;

std::string Takeover::forget_command(const WorkloadRef& ref) {
  return std::string("`kubectl annotate ") + to_string(ref.kind) + " " + ref.name + " -n " +
         ref.ns + " " + kOriginalAnnotation + "- " + kOriginalConfigMapAnnotation + "- " +
         kSessionAnnotation + "- " + kAgentAnnotation + "-`";
}

std::optional<json> Takeover::original_template(const WorkloadRef& ref, const json& object) {
  auto name = original_configmap(object);
  if (name.empty()) return saved_template(object);
  json configmap;
  try {
    configmap = client_.get(kube::resource_path("v1", ref.ns, "configmaps", name));
  } catch (const kube::ApiError& e) {
    if (e.code != 404) throw;
  }
  auto original = template_in_configmap(configmap);
  if (!original) {
    throw WorkloadError(ref.describe() + "'s original template was kept in ConfigMap " + name +
                        ", which is gone or unreadable, so lpk cannot restore it; put the "
                        "template back from your manifests, then " +
                        forget_command(ref) + " clears lpk's annotations");
  }
  return original;
}

void Takeover::remove_if_present(const std::string& path, std::string_view propagation) {
  try {
    client_.remove(path, propagation);
  } catch (const kube::ApiError& e) {
    if (e.code != 404) throw;
  }
}

void Takeover::create_session_objects(const TakeoverTarget& target, const TakeoverOptions& options,
                                      const SessionOwner& owner, AgentSpec& agent) {
  const auto& ref = target.workload;
  auto create = [&](const char* resource, const json& body) {
    try {
      client_.create(kube::resource_path("v1", ref.ns, resource), body);
    } catch (const kube::ApiError& e) {
      if (e.code != 403) throw;
      throw WorkloadError(
          "lpk may not create " + std::string(resource) + " in namespace " + ref.ns + " (" +
          e.what() + "); it keeps the session's " +
          (std::string(resource) == "secrets" ? "tunnel secret" : "original template") +
          " there: ask for `create` and `delete` on " + resource);
    }
  };
  create("configmaps", template_configmap(ref, target.object, owner.id,
                                          kube::template_of(ref.kind, target.object)));
  agent.template_configmap = template_configmap_name(owner.id);
  if (options.tunnel_secret.empty()) return;
  try {
    create("secrets",
           tunnel_secret(ref, target.object, owner.id, agent.session, options.tunnel_secret));
  } catch (const std::exception&) {
    remove_if_present(kube::resource_path("v1", ref.ns, "configmaps", agent.template_configmap));
    throw;
  }
  agent.secret_name = tunnel_secret_name(owner.id);
}

void Takeover::remove_session_objects_of(const WorkloadRef& ref, const json& object) {
  if (auto name = original_configmap(object); !name.empty()) {
    remove_if_present(kube::resource_path("v1", ref.ns, "configmaps", name));
  }
  auto annotations = object["metadata"].value("annotations", json::object());
  auto owner = SessionOwner::from_json(
      json::parse(annotations.value(kSessionAnnotation, "{}"), nullptr, false));
  if (owner.id.empty()) return;
  remove_tunnel_secret(ref.ns, owner.id);
  // From inside the restorer, its own objects go last, once restore has finished (restore_watch).
  if (!inside_restorer_) remove_restorer(ref.ns, owner.id);
}

void Takeover::remove_tunnel_secret(const std::string& ns, const std::string& session_id) {
  remove_if_present(kube::resource_path("v1", ns, "secrets", tunnel_secret_name(session_id)));
}

void Takeover::remove_secrets_of_dead_sessions(const std::string& ns) {
  kube::ListOptions labelled;
  labelled.label_selector = kSessionLabel;
  json secrets;
  try {
    secrets = client_.list(kube::resource_path("v1", ns, "secrets"), labelled);
  } catch (const kube::ApiError& e) {
    if (e.code == 403) return;  // each session's own restore still removes its Secret
    throw;
  }
  for (const auto& secret : secrets.value("items", json::array())) {
    const auto& meta = secret["metadata"];
    auto owner = SessionOwner::from_json(json::parse(
        meta.value("annotations", json::object()).value(kSessionAnnotation, "{}"), nullptr, false));
    // Another machine's sessions cannot be judged from here; a live one still needs its own.
    if (owner.id.empty() || !owner.on_this_host() || owner.alive_here()) continue;
    remove_if_present(kube::resource_path("v1", ns, "secrets", meta.value("name", "")));
    remove_restorer(ns, owner.id);
  }
}

}  // namespace lpk::proxy
