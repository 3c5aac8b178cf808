#include "proxy/takeover/session_objects.hpp"

#include "kube/text.hpp"

namespace lpk::proxy {

using kube::field;
using kube::text_of;
using nlohmann::json;

std::string template_configmap_name(const std::string& session_id) {
  return "lpk-original-" + session_id;
}

std::string tunnel_secret_name(const std::string& session_id) {
  return "lpk-session-" + session_id;
}

json owner_reference(const WorkloadRef& ref, const json& object) {
  if (ref.kind == WorkloadKind::pod) return nullptr;
  const auto& meta = field(object, "metadata");
  return {{"apiVersion", group_version_of(ref.kind)},
          {"kind", to_string(ref.kind)},
          {"name", ref.name},
          {"uid", text_of(field(meta, "uid"))}};
}

namespace {

json session_object(const char* kind, const std::string& name, const WorkloadRef& ref,
                    const json& object, const std::string& session_id) {
  json result = {
      {"apiVersion", "v1"},
      {"kind", kind},
      {"metadata",
       {{"name", name},
        {"namespace", ref.ns},
        {"labels", {{kSessionLabel, session_id}, {"app.kubernetes.io/managed-by", "lpk"}}}}}};
  auto owner = owner_reference(ref, object);
  if (!owner.is_null() && !text_of(owner["uid"]).empty()) {
    result["metadata"]["ownerReferences"] = json::array({owner});
  }
  return result;
}

}  // namespace

json template_configmap(const WorkloadRef& ref, const json& object, const std::string& session_id,
                        const json& pod_template) {
  auto cm =
      session_object("ConfigMap", template_configmap_name(session_id), ref, object, session_id);
  cm["metadata"]["annotations"] = {{"lpk.dev/workload", ref.describe()}};
  cm["data"] = {{kTemplateKey, pod_template.dump()}};
  return cm;
}

std::optional<json> template_in_configmap(const json& configmap) {
  const auto& text = field(field(configmap, "data"), kTemplateKey);
  if (!text.is_string()) return std::nullopt;
  auto parsed = json::parse(text.get<std::string>(), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

json tunnel_secret(const WorkloadRef& ref, const json& object, const std::string& session_id,
                   const std::string& owner, const std::string& secret) {
  auto s = session_object("Secret", tunnel_secret_name(session_id), ref, object, session_id);
  s["metadata"]["annotations"] = {{kSessionAnnotation, owner}};
  s["type"] = "Opaque";
  s["data"] = {{kSecretKey, text::base64_encode(secret)}};
  return s;
}

std::string outbound_deployment_name(const std::string& session_id) {
  return "lpk-outbound-" + session_id;
}

json outbound_deployment(const std::string& ns, const std::string& session_id,
                         const AgentSpec& agent) {
  const json labels = {{"app.kubernetes.io/name", "lpk-agent"},
                       {"app.kubernetes.io/managed-by", "lpk"},
                       {kSessionLabel, session_id}};
  const std::string container = "lpk-agent";
  json pod_template = {{"metadata", {{"labels", labels}}},
                       {"spec", {{"containers", json::array({{{"name", container}}})}}}};
  pod_template = agent_template(pod_template, container, agent);
  pod_template["metadata"]["annotations"][kSessionAnnotation] = agent.session;
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata",
           {{"name", outbound_deployment_name(session_id)},
            {"namespace", ns},
            {"labels", labels},
            {"annotations",
             {{kCreatedBySessionAnnotation, session_id}, {kSessionAnnotation, agent.session}}}}},
          {"spec",
           {{"replicas", 0},
            {"selector", {{"matchLabels", {{kSessionLabel, session_id},
                                           {"app.kubernetes.io/name", "lpk-agent"}}}}},
            {"template", pod_template}}}};
}

bool created_by_session(const json& object) {
  return field(field(field(object, "metadata"), "annotations"), kCreatedBySessionAnnotation)
      .is_string();
}

}  // namespace lpk::proxy
