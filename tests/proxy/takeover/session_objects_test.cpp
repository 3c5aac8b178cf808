// The objects a session creates beside the workload (the original's ConfigMap, the tunnel
// Secret) and how the agent patch refers to them.
#include "proxy/takeover/session_objects.hpp"

#include <gtest/gtest.h>

#include "kube/text.hpp"

namespace lpk::proxy {
namespace {

using nlohmann::json;

json session_objects_deployment() {
  return json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"api","namespace":"demo","uid":"d-1","annotations":{"team":"core"}},
    "spec":{"replicas":1,"selector":{"matchLabels":{"app":"api"}},
      "template":{"metadata":{"labels":{"app":"api"}},
        "spec":{"containers":[
          {"name":"api","image":"lpk/demo-api:1",
           "env":[{"name":"PORT","value":"8080"}],"ports":[{"containerPort":8080}]}]}}}})");
}

const WorkloadRef kSessionObjectsApi{WorkloadKind::deployment, "demo", "api"};

TEST(TunnelSecret, TheAgentReadsItByReferenceAndNeverSeesItInTheSpec) {
  const std::string secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  auto object = session_objects_deployment();
  AgentSpec agent;
  agent.serve_ports = {8080};
  agent.secret_name = tunnel_secret_name("abcd1234");
  agent.template_configmap = template_configmap_name("abcd1234");
  auto patch = agent_patch(WorkloadKind::deployment, object, "api", agent);
  const auto& container = patch["spec"]["template"]["spec"]["containers"][0];
  ASSERT_EQ(container["env"].size(), 1u) << "merged by name into the container's own env";
  EXPECT_EQ(container["env"][0], json::parse(R"({"name":"LPK_TUNNEL_SECRET","valueFrom":
      {"secretKeyRef":{"name":"lpk-session-abcd1234","key":"secret"}}})"));
  auto args = container["args"].get<std::vector<std::string>>();
  auto flag = std::find(args.begin(), args.end(), "--secret-env");
  ASSERT_NE(flag, args.end());
  EXPECT_EQ(*std::next(flag), "LPK_TUNNEL_SECRET");

  // The agent template is what the server makes of the patch: the app's own env stays.
  auto swapped = agent_template(object["spec"]["template"], "api", agent);
  const auto& env = swapped["spec"]["containers"][0]["env"];
  ASSERT_EQ(env.size(), 2u);
  EXPECT_EQ(env[0]["name"], "PORT");
  EXPECT_EQ(env[1]["name"], "LPK_TUNNEL_SECRET");
  EXPECT_EQ(template_change(template_identity(swapped), swapped), "");

  auto s = tunnel_secret(kSessionObjectsApi, object, "abcd1234", R"({"id":"abcd1234"})", secret);
  EXPECT_EQ(s["metadata"]["name"], "lpk-session-abcd1234");
  EXPECT_EQ(s["metadata"]["namespace"], "demo");
  EXPECT_EQ(s["metadata"]["labels"][kSessionLabel], "abcd1234");
  EXPECT_EQ(s["metadata"]["annotations"][kSessionAnnotation], R"({"id":"abcd1234"})");
  EXPECT_EQ(s["data"][kSecretKey], text::base64_encode(secret));
  EXPECT_EQ(s["metadata"]["ownerReferences"][0]["uid"], "d-1");
  for (const auto& text : {patch.dump(), swapped.dump()}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << "the secret must not be in the spec";
  }
}

TEST(OutboundAgent, ADeploymentOfItsOwnThatOnlyItsLabelsSelect) {
  AgentSpec agent;
  agent.session = R"({"id":"0b0b0b0b"})";
  agent.secret_name = tunnel_secret_name("0b0b0b0b");
  auto d = outbound_deployment("demo", "0b0b0b0b", agent);
  EXPECT_EQ(d["metadata"]["name"], "lpk-outbound-0b0b0b0b");
  EXPECT_EQ(d["metadata"]["namespace"], "demo");
  EXPECT_TRUE(created_by_session(d));
  EXPECT_FALSE(created_by_session(session_objects_deployment()));
  EXPECT_EQ(d["spec"]["replicas"], 0) << "scaled up once its Secret exists";
  // The selector picks the template's own pods, by lpk's labels only.
  const auto& labels = d["spec"]["template"]["metadata"]["labels"];
  for (const auto& [key, value] : d["spec"]["selector"]["matchLabels"].items()) {
    EXPECT_EQ(labels[key], value) << key;
  }
  EXPECT_EQ(labels["app.kubernetes.io/managed-by"], "lpk");
  EXPECT_FALSE(labels.contains("app"));
  const auto& container = d["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["command"], json::array({"lpk-agent"}));
  EXPECT_EQ(container["env"][0]["valueFrom"]["secretKeyRef"]["name"], "lpk-session-0b0b0b0b");
  auto args = container["args"].get<std::vector<std::string>>();
  EXPECT_EQ(std::find(args.begin(), args.end(), "--serve"), args.end()) << "nothing inbound";
}

TEST(TunnelSecret, WithoutOneTheAgentGetsNoVariable) {
  AgentSpec agent;
  auto patch = agent_patch(WorkloadKind::deployment, session_objects_deployment(), "api", agent);
  const auto& container = patch["spec"]["template"]["spec"]["containers"][0];
  EXPECT_FALSE(container.contains("env"));
  EXPECT_EQ(container["args"].dump().find("--secret-env"), std::string::npos);
}

TEST(OriginalTemplate, KeptInAConfigMapTheWorkloadOwnsAndNamesInAnAnnotation) {
  auto object = session_objects_deployment();
  // Big enough that inline it would pass the 256 KiB limit on all annotations together.
  object["spec"]["template"]["metadata"]["annotations"]["huge"] = std::string(300 * 1024, 'x');
  AgentSpec agent;
  agent.template_configmap = template_configmap_name("abcd1234");
  auto patch = agent_patch(WorkloadKind::deployment, object, "api", agent);
  const auto& annotations = patch["metadata"]["annotations"];
  EXPECT_FALSE(annotations.contains(kOriginalAnnotation));
  EXPECT_EQ(annotations[kOriginalConfigMapAnnotation], "lpk-original-abcd1234");
  EXPECT_LT(patch["metadata"].dump().size(), 4096u);

  auto cm = template_configmap(kSessionObjectsApi, object, "abcd1234", object["spec"]["template"]);
  EXPECT_EQ(cm["kind"], "ConfigMap");
  EXPECT_EQ(cm["metadata"]["name"], "lpk-original-abcd1234");
  EXPECT_EQ(cm["metadata"]["labels"][kSessionLabel], "abcd1234");
  EXPECT_EQ(cm["metadata"]["ownerReferences"],
            json::parse(R"([{"apiVersion":"apps/v1","kind":"Deployment","name":"api",
                            "uid":"d-1"}])"));
  EXPECT_EQ(template_in_configmap(cm), object["spec"]["template"]);
  EXPECT_FALSE(template_in_configmap(json::parse(R"({"data":{"template.json":"{bad"}})")));
  EXPECT_FALSE(template_in_configmap(json::object()));

  // What the server holds after the patch restores to the original, pointer gone.
  auto patched = object;
  patched["metadata"]["annotations"].update(annotations);
  patched["spec"]["template"] = agent_template(object["spec"]["template"], "api", agent);
  EXPECT_TRUE(carries_original(patched));
  EXPECT_EQ(original_configmap(patched), "lpk-original-abcd1234");
  auto restored = restored_object(WorkloadKind::deployment, patched, *template_in_configmap(cm));
  EXPECT_EQ(restored, object);
  EXPECT_FALSE(carries_original(restored));
}

TEST(OriginalTemplate, ABarePodOwnsNothingItIsRecreatedWithANewUid) {
  auto pod = json::parse(R"({"kind":"Pod","metadata":{"name":"solo","namespace":"demo",
      "uid":"p-1"},"spec":{"containers":[{"name":"app","image":"a:1"}]}})");
  WorkloadRef ref{WorkloadKind::pod, "demo", "solo"};
  auto cm = template_configmap(ref, pod, "abcd1234", template_of(WorkloadKind::pod, pod));
  EXPECT_FALSE(cm["metadata"].contains("ownerReferences"));
  EXPECT_FALSE(
      tunnel_secret(ref, pod, "abcd1234", "{}", "s")["metadata"].contains("ownerReferences"));
}

}  // namespace
}  // namespace lpk::proxy
