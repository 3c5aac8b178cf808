#include "proxy/takeover/workload.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

namespace lpk::proxy {
namespace {

using nlohmann::json;

json api_service() {
  return json::parse(R"({"metadata":{"name":"api","namespace":"demo"},
    "spec":{"selector":{"app":"api"},
            "ports":[{"name":"http","port":80,"targetPort":"http","protocol":"TCP"},
                     {"name":"metrics","port":9090}]}})");
}

json api_deployment() {
  return json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"api","namespace":"demo","generation":3,"resourceVersion":"41",
                "annotations":{"team":"core"}},
    "spec":{"replicas":2,"selector":{"matchLabels":{"app":"api"}},
      "template":{"metadata":{"labels":{"app":"api"}},
        "spec":{"serviceAccountName":"api-sa",
          "containers":[
            {"name":"api","image":"lpk/demo-api:1",
             "env":[{"name":"PORT","value":"8080"}],
             "envFrom":[{"configMapRef":{"name":"api-env"}}],
             "ports":[{"containerPort":8080,"name":"http"},{"containerPort":9090}],
             "readinessProbe":{"httpGet":{"path":"/healthz","port":"http"}},
             "resources":{"limits":{"memory":"64Mi"}},
             "volumeMounts":[{"name":"config","mountPath":"/etc/demo"},
                             {"name":"secret","mountPath":"/etc/secret"}]},
            {"name":"log-shipper","image":"fluent:1","ports":[{"containerPort":24224}]}],
          "volumes":[{"name":"config","configMap":{"name":"api-config"}}]}}},
    "status":{"observedGeneration":3,"replicas":2,"updatedReplicas":2,"availableReplicas":2}})");
}

TEST(ServedContainer, NamedTargetPortPicksTheContainerThatDeclaresIt) {
  auto spec = api_deployment()["spec"]["template"]["spec"];
  auto served = served_container(api_service(), spec);
  EXPECT_EQ(served.name, "api");
  ASSERT_EQ(served.routes.size(), 2u);
  EXPECT_EQ(served.routes[0].service_port, 80);
  EXPECT_EQ(served.routes[0].container_port, 8080);
  EXPECT_EQ(served.routes[0].name, "http");
  // A missing targetPort means the service port itself.
  EXPECT_EQ(served.routes[1].container_port, 9090);
}

TEST(ServedContainer, UndeclaredNumericPortOfASingleContainerIsServedByIt) {
  auto service = json::parse(R"({"metadata":{"name":"s"},"spec":{"ports":[{"port":80,"targetPort":3000}]}})");
  auto spec = json::parse(R"({"containers":[{"name":"app","image":"x"}]})");
  auto served = served_container(service, spec);
  EXPECT_EQ(served.name, "app");
  ASSERT_EQ(served.routes.size(), 1u);
  EXPECT_EQ(served.routes[0].container_port, 3000);
}

TEST(ServedContainer, AmbiguityAndUnknownNamesAreOneLineErrorsNamingTheFlag) {
  auto service = json::parse(R"({"metadata":{"name":"s"},"spec":{"ports":[{"port":80},{"port":81}]}})");
  auto spec = json::parse(R"({"containers":[{"name":"a","ports":[{"containerPort":80}]},
                                            {"name":"b","ports":[{"containerPort":81}]}]})");
  try {
    served_container(service, spec);
    FAIL() << "two serving containers must be refused";
  } catch (const WorkloadError& e) {
    EXPECT_NE(std::string(e.what()).find("--container"), std::string::npos) << e.what();
  }
  EXPECT_EQ(served_container(service, spec, "b").name, "b");
  EXPECT_THROW(served_container(service, spec, "c"), WorkloadError);
}

TEST(AgentPatch, SwapsOnlyTheServingContainerAndSavesTheOriginal) {
  auto deployment = api_deployment();
  AgentSpec agent;
  agent.serve_ports = {8080, 9090};
  agent.report_mounts = {"/etc/demo", "/etc/secret"};
  agent.session = R"({"id":"abc"})";
  auto patch = agent_patch(WorkloadKind::deployment, deployment, "api", agent);

  auto saved = saved_template(patch);
  ASSERT_TRUE(saved);
  EXPECT_EQ(*saved, deployment["spec"]["template"]);
  EXPECT_EQ(patch["metadata"]["annotations"][kSessionAnnotation], agent.session);

  auto containers = patch["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 1u) << "a strategic merge patch names only the changed container";
  EXPECT_EQ(containers[0]["name"], "api");
  EXPECT_EQ(containers[0]["image"], agent.image);
  EXPECT_EQ(containers[0]["command"], json::array({"lpk-agent"}));
  EXPECT_TRUE(containers[0]["readinessProbe"].is_null());
  EXPECT_FALSE(containers[0].contains("env")) << "env must be left to the server's merge";
  auto args = containers[0]["args"].get<std::vector<std::string>>();
  auto joined = std::accumulate(args.begin(), args.end(), std::string(),
                                [](std::string a, const std::string& b) { return a + " " + b; });
  EXPECT_EQ(joined,
            " --listen 127.0.0.1:4590 --serve 8080 --serve 9090 --report-mounts "
            "/etc/demo,/etc/secret --file-limit 1048576 --container api");

  // Only what differs from the agent's own defaults is passed on.
  agent.dead_link_timeout = std::chrono::seconds(5);
  agent.resume_grace = std::chrono::minutes(2);
  auto tuned = agent_patch(WorkloadKind::deployment, deployment, "api", agent);
  auto tuned_args = tuned["spec"]["template"]["spec"]["containers"][0]["args"]
                        .get<std::vector<std::string>>();
  auto has = [&](const std::string& flag, const std::string& value) {
    auto it = std::find(tuned_args.begin(), tuned_args.end(), flag);
    return it != tuned_args.end() && std::next(it) != tuned_args.end() && *std::next(it) == value;
  };
  EXPECT_TRUE(has("--dead-link-timeout", "5000ms"));
  EXPECT_TRUE(has("--resume-grace", "120000ms"));
}

TEST(AgentTemplate, KeepsEverythingButImageCommandArgsAndProbes) {
  auto tmpl = api_deployment()["spec"]["template"];
  AgentSpec agent;
  agent.serve_ports = {8080};
  auto swapped = agent_template(tmpl, "api", agent);
  auto& api = swapped["spec"]["containers"][0];
  EXPECT_EQ(api["image"], agent.image);
  EXPECT_FALSE(api.contains("readinessProbe"));
  for (const char* kept : {"env", "envFrom", "ports", "resources", "volumeMounts"}) {
    EXPECT_EQ(api[kept], tmpl["spec"]["containers"][0][kept]) << kept;
  }
  EXPECT_EQ(swapped["spec"]["containers"][1], tmpl["spec"]["containers"][1]) << "sidecar kept";
  EXPECT_EQ(swapped["spec"]["serviceAccountName"], "api-sa");
}

TEST(AgentPatch, KeepImageChangesOnlyTheCommandAndAddsTheInitContainerAndEmptyDir) {
  auto deployment = api_deployment();
  deployment["spec"]["template"]["spec"]["securityContext"] = {{"runAsUser", 1234}};
  AgentSpec agent;
  agent.serve_ports = {80};  // below 1024: the application's own user already served it
  agent.keep_image = true;
  auto patch = agent_patch(WorkloadKind::deployment, deployment, "api", agent);
  const auto& spec = patch["spec"]["template"]["spec"];
  const auto& api = spec["containers"][0];
  EXPECT_FALSE(api.contains("image")) << "the container keeps its image";
  EXPECT_EQ(api["command"], json(kKeptImageAgentCommand));
  EXPECT_EQ(api["volumeMounts"],
            json::parse(R"([{"name":"lpk-agent","mountPath":"/lpk-agent","readOnly":true}])"));
  ASSERT_EQ(spec["initContainers"].size(), 1u);
  EXPECT_EQ(spec["initContainers"][0]["image"], agent.image);
  EXPECT_EQ(spec["initContainers"][0]["command"],
            json::array({"lpk-agent", "install", "/lpk-agent"}));
  EXPECT_EQ(spec["volumes"], json::parse(R"([{"name":"lpk-agent","emptyDir":{}}])"));
  EXPECT_FALSE(spec.contains("securityContext")) << "the pod's own security context stays";

  // As the server merges it: the container's mounts, env and user stay, the agent's are added.
  auto tmpl = agent_template(deployment["spec"]["template"], "api", agent);
  const auto& merged = tmpl["spec"]["containers"][0];
  EXPECT_EQ(merged["image"], "lpk/demo-api:1");
  EXPECT_EQ(merged["volumeMounts"].size(), 3u);
  EXPECT_EQ(merged["env"], deployment["spec"]["template"]["spec"]["containers"][0]["env"]);
  EXPECT_EQ(tmpl["spec"]["volumes"].size(), 2u);
  EXPECT_EQ(tmpl["spec"]["securityContext"], json({{"runAsUser", 1234}}));

  // Restore puts back exactly the original: no init container, no emptyDir left.
  auto patched = deployment;
  patched["metadata"]["annotations"].update(patch["metadata"]["annotations"]);
  patched["spec"]["template"] = tmpl;
  auto restored = restored_object(WorkloadKind::deployment, patched, *saved_template(patched));
  EXPECT_EQ(restored["spec"], deployment["spec"]);
}

TEST(AgentPatch, RecordsWhatItInstalledAndTellsEveryLaterChange) {
  auto deployment = api_deployment();
  AgentSpec agent;
  agent.serve_ports = {8080};
  auto patch = agent_patch(WorkloadKind::deployment, deployment, "api", agent);
  auto installed = json::parse(patch["metadata"]["annotations"][kAgentAnnotation].get<std::string>());
  auto agent_tmpl = agent_template(deployment["spec"]["template"], "api", agent);
  EXPECT_EQ(template_change(installed, agent_tmpl), "");
  // Server-side defaults (probes, pull policy) are not changes.
  auto defaulted = agent_tmpl;
  defaulted["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent";
  EXPECT_EQ(template_change(installed, defaulted), "");

  auto reverted = deployment["spec"]["template"];  // what a GitOps sync puts back
  auto change = template_change(installed, reverted);
  EXPECT_NE(change.find("container api: image " + agent.image + " -> "), std::string::npos)
      << change;
  auto env = agent_tmpl;
  env["spec"]["containers"][0]["env"].push_back({{"name", "DEBUG"}, {"value", "1"}});
  EXPECT_EQ(template_change(installed, env), "container api: environment changed");
  auto added = agent_tmpl;
  added["spec"]["containers"].push_back({{"name", "istio-proxy"}, {"image", "istio/proxyv2"}});
  EXPECT_EQ(template_change(installed, added), "container istio-proxy added");
  EXPECT_EQ(template_change(nullptr, reverted), "") << "sessions older than the record";
}

TEST(Mounts, ThoseAdmissionAddedToALivePodAreReportedToo) {
  auto tmpl = api_deployment()["spec"]["template"]["spec"];
  auto from_template = mount_paths(tmpl, "api");
  ASSERT_FALSE(from_template.empty());
  // What a live pod of the template holds after admission: the token volume and, with IRSA,
  // the web-identity token, both added to the Pod and not to the template.
  auto pod = tmpl;
  pod["containers"][0]["volumeMounts"].push_back(
      {{"name", "kube-api-access-x7k2p"},
       {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"}});
  pod["containers"][0]["volumeMounts"].push_back(
      {{"name", "aws-iam-token"}, {"mountPath", "/var/run/secrets/eks.amazonaws.com/serviceaccount"}});
  auto all = mount_paths(tmpl, "api", pod);
  auto want = from_template;
  want.push_back("/var/run/secrets/kubernetes.io/serviceaccount");
  want.push_back("/var/run/secrets/eks.amazonaws.com/serviceaccount");
  EXPECT_EQ(all, want) << "each path once, the template's first";
}

TEST(AgentPatch, ANonRootAgentGetsTheSysctlForLowPortsAndAnFsGroupForOwnerOnlyFiles) {
  auto deployment = api_deployment();
  AgentSpec agent;
  agent.serve_ports = {8080};
  auto patch = agent_patch(WorkloadKind::deployment, deployment, "api", agent);
  EXPECT_FALSE(patch["spec"]["template"]["spec"].contains("securityContext"))
      << "nothing to add for a high port and world-readable files";

  agent.serve_ports = {80, 8080};
  auto& spec = deployment["spec"]["template"]["spec"];
  spec["securityContext"] = {{"runAsNonRoot", true},
                             {"sysctls", json::array({{{"name", "kernel.shm_rmid_forced"},
                                                       {"value", "1"}}})}};
  spec["volumes"].push_back({{"name", "secret"}, {"secret", {{"secretName", "api"},
                                                             {"defaultMode", 0400}}}});
  patch = agent_patch(WorkloadKind::deployment, deployment, "api", agent);
  auto security = patch["spec"]["template"]["spec"]["securityContext"];
  EXPECT_EQ(security["runAsNonRoot"], true) << security;
  EXPECT_EQ(security["sysctls"],
            json::parse(R"([{"name":"kernel.shm_rmid_forced","value":"1"},
                            {"name":"net.ipv4.ip_unprivileged_port_start","value":"80"}])"))
      << "the list is sent whole, the pod's own sysctls kept";
  EXPECT_EQ(security["fsGroup"], kAgentUid);
  // The same for a bare pod, whose template is written whole.
  auto tmpl = agent_template(deployment["spec"]["template"], "api", agent);
  EXPECT_EQ(tmpl["spec"]["securityContext"], security);

  // What the pod chose stays: its own value of the sysctl, its own fsGroup.
  spec["securityContext"]["sysctls"].push_back(
      {{"name", "net.ipv4.ip_unprivileged_port_start"}, {"value", "0"}});
  spec["securityContext"]["fsGroup"] = 2000;
  patch = agent_patch(WorkloadKind::deployment, deployment, "api", agent);
  EXPECT_FALSE(patch["spec"]["template"]["spec"].contains("securityContext"));
}

TEST(GitOps, ArgoCdAndFluxAreNamedWithHowToPauseThem) {
  WorkloadRef ref{WorkloadKind::deployment, "demo", "api"};
  auto object = api_deployment();
  EXPECT_EQ(gitops_warning(ref, object), "");
  auto argo = object;
  argo["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] =
      "shop:apps/Deployment:demo/api";
  auto warning = gitops_warning(ref, argo);
  EXPECT_NE(warning.find("Argo CD application shop"), std::string::npos) << warning;
  EXPECT_NE(warning.find("argocd app set shop --sync-policy none"), std::string::npos) << warning;
  auto flux = object;
  flux["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = "apps";
  flux["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/namespace"] = "flux-system";
  warning = gitops_warning(ref, flux);
  EXPECT_NE(warning.find("flux suspend kustomization apps -n flux-system"), std::string::npos)
      << warning;
  auto helm = object;
  helm["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"] = "api";
  EXPECT_NE(gitops_warning(ref, helm).find("flux suspend helmrelease api"), std::string::npos);
}

TEST(Restore, PutsTheSavedTemplateBackAndDropsLpkAnnotations) {
  auto original = api_deployment();
  // What the server holds after the patch: the template changed, annotations added.
  auto patched = original;
  AgentSpec agent;
  auto patch = agent_patch(WorkloadKind::deployment, original, "api", agent);
  patched["metadata"]["annotations"].update(patch["metadata"]["annotations"]);
  patched["spec"]["template"] = agent_template(original["spec"]["template"], "api", agent);

  auto restored = restored_object(WorkloadKind::deployment, patched, *saved_template(patched));
  EXPECT_EQ(restored["spec"], original["spec"]);
  EXPECT_EQ(restored["metadata"]["annotations"], original["metadata"]["annotations"]);
  EXPECT_EQ(restored["metadata"]["resourceVersion"], "41") << "PUT must carry the version";
}

TEST(Restore, BarePodIsRecreatedFromItsTemplateWithoutServerFields) {
  auto pod = json::parse(R"({"metadata":{"name":"solo","namespace":"demo","uid":"u1",
      "resourceVersion":"9","labels":{"app":"solo"}},
    "spec":{"nodeName":"n1","containers":[{"name":"app","image":"a:1"}],
            "ephemeralContainers":[{"name":"debugger","image":"busybox"}]},
    "status":{"phase":"Running"}})");
  auto tmpl = template_of(WorkloadKind::pod, pod);
  auto fresh = recreated_pod(pod, tmpl);
  EXPECT_FALSE(fresh["metadata"].contains("uid"));
  EXPECT_FALSE(fresh["metadata"].contains("resourceVersion"));
  EXPECT_FALSE(fresh.contains("status"));
  EXPECT_EQ(fresh["metadata"]["labels"], pod["metadata"]["labels"]);
  EXPECT_FALSE(fresh["spec"].contains("nodeName")) << "the scheduler places it again";
  EXPECT_FALSE(fresh["spec"].contains("ephemeralContainers")) << "create refuses them";
  EXPECT_EQ(fresh["spec"]["containers"], pod["spec"]["containers"]);
}

TEST(Owner, ReplicaSetOfADeploymentIsTheDeployment) {
  auto pod = json::parse(R"({"metadata":{"name":"api-1","namespace":"demo",
      "ownerReferences":[{"kind":"ReplicaSet","name":"api-5d9","controller":true}]}})");
  auto rs = json::parse(R"({"metadata":{"name":"api-5d9","namespace":"demo",
      "ownerReferences":[{"kind":"Deployment","name":"api","controller":true}]}})");
  EXPECT_EQ(owner_of(pod, &rs), (WorkloadRef{WorkloadKind::deployment, "demo", "api"}));
  EXPECT_EQ(owner_of(pod).kind, WorkloadKind::replicaset);
  auto bare = json::parse(R"({"metadata":{"name":"solo","namespace":"demo"}})");
  EXPECT_EQ(owner_of(bare), (WorkloadRef{WorkloadKind::pod, "demo", "solo"}));
  auto job = json::parse(R"({"metadata":{"name":"j","namespace":"demo",
      "ownerReferences":[{"kind":"Job","name":"j","controller":true}]}})");
  EXPECT_THROW(owner_of(job), WorkloadError);
}

}  // namespace
}  // namespace lpk::proxy
