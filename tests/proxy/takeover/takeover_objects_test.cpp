// Takeover's session objects against lpk-kubesim --no-runtime (ctest entry
// proxy_takeover_kubesim): the original template kept in a ConfigMap, which a template too big
// for the 256 KiB annotation limit needs, and the tunnel Secret, created before the workload
// changes and deleted by every restore path, including the repair of a dead session's.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>

#include "kube/text.hpp"
#include "proxy/takeover/session_objects.hpp"
#include "proxy/takeover/takeover.hpp"
#include "tests/kube/fake_server.hpp"
#include "tests/one_line.hpp"
#include "tests/proxy/takeover/kubesim_cluster.hpp"

namespace lpk::proxy {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class TakeoverKubesimObjects : public test::KubesimCluster {
 protected:
  TakeoverOptions options(const std::string& service) const {
    TakeoverOptions o;
    o.service = service;
    o.ns = ns_;
    o.agent_image = "lpk/lpk-agent:test";
    o.rollout_timeout = 60s;
    o.tunnel_secret = std::string(64, 'f');
    return o;
  }
  Takeover takeover() { return Takeover(*client_, progress_); }
  std::string path_of(const char* resource, const std::string& name) const {
    return kube::resource_path("v1", ns_, resource, name);
  }
  /// The HTTP code a GET of `path` answers (200 when it exists).
  int get_code(const std::string& path) {
    try {
      client_->get(path);
      return 200;
    } catch (const kube::ApiError& e) {
      return e.code;
    }
  }
  console::Progress progress_{false};
};

/// A pid that no process has: a child that has exited and been reaped.
int reaped_pid() {
  pid_t pid = 0;
  const char* argv[] = {"true", nullptr};
  if (posix_spawnp(&pid, "true", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    return 0;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

TEST_F(TakeoverKubesimObjects, AHugeTemplateIsRefusedInlineButRoundTripsThroughAConfigMap) {
  // What `kubectl apply` of a big manifest leaves: the template's own annotations and the
  // last-applied copy of it, each well under the limit, together over it once copied again.
  auto object = workload("Deployment", "big", 1);
  object["spec"]["template"]["metadata"]["annotations"]["example.com/config"] =
      std::string(150 * 1024, 'c');
  object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
      std::string(120 * 1024, 'l');
  create(object);
  create(service("big", "big"));
  ASSERT_TRUE(pods_->wait_ready("big", 1));
  auto o = options("big");
  auto target = takeover().locate(o);
  const auto path = target.workload.path();
  const auto before = client_->get(path);

  // The former way, the template inline in an annotation: the API server refuses it.
  AgentSpec inline_agent;
  inline_agent.serve_ports = {8080};
  try {
    client_->patch(path, agent_patch(target.workload.kind, before, "app", inline_agent));
    ADD_FAILURE() << "a patch past the annotation limit was accepted";
  } catch (const kube::ApiError& e) {
    EXPECT_EQ(e.code, 422);
    EXPECT_NE(std::string(e.what()).find(
                  "metadata.annotations: Too long: must have at most 262144 bytes"),
              std::string::npos)
        << e.what();
  }

  const auto owner = SessionOwner::current("b1b2c3d4");
  takeover().install_agent(target, o, owner);
  ASSERT_EQ(takeover().wait_for_agents(target, o).size(), 1u);
  const auto changed = client_->get(path);
  const auto configmap = path_of("configmaps", template_configmap_name(owner.id));
  EXPECT_EQ(changed["metadata"]["annotations"].value(kOriginalConfigMapAnnotation, ""),
            template_configmap_name(owner.id));
  EXPECT_EQ(template_in_configmap(client_->get(configmap)), before["spec"]["template"]);
  EXPECT_EQ(takeover().changed_workloads(ns_).size(), 1u);
  // A later session finds the original container through the ConfigMap.
  EXPECT_EQ(takeover().locate(o).container.name, "app");

  ASSERT_TRUE(takeover().restore(target.workload, 60s));
  const auto after = client_->get(path);
  EXPECT_EQ(after["spec"], before["spec"]) << "restored exactly";
  auto annotations = after["metadata"]["annotations"];
  annotations.erase("deployment.kubernetes.io/revision");
  auto was = before["metadata"]["annotations"];
  was.erase("deployment.kubernetes.io/revision");
  EXPECT_EQ(annotations, was);
  EXPECT_EQ(get_code(configmap), 404) << "the restore deletes the ConfigMap";
  EXPECT_EQ(get_code(path_of("secrets", tunnel_secret_name(owner.id))), 404);
  EXPECT_TRUE(takeover().changed_workloads(ns_).empty());
}

TEST_F(TakeoverKubesimObjects, TheSecretExistsBeforeThePodsAndTheAgentRefersToIt) {
  deploy("Deployment", "api", 1);
  auto o = options("api");
  auto target = takeover().locate(o);
  const auto owner = SessionOwner::current("c0ffee01");
  takeover().install_agent(target, o, owner);
  auto secret = client_->get(path_of("secrets", tunnel_secret_name(owner.id)));
  EXPECT_EQ(text::base64_decode(secret["data"].value(kSecretKey, "")), o.tunnel_secret);
  EXPECT_EQ(secret["metadata"]["labels"].value(kSessionLabel, ""), owner.id);
  auto agents = takeover().wait_for_agents(target, o);
  ASSERT_EQ(agents.size(), 1u);
  const auto& app = agents[0]["spec"]["containers"][0];
  EXPECT_EQ(app["env"].back()["valueFrom"]["secretKeyRef"]["name"], tunnel_secret_name(owner.id));
  EXPECT_EQ(agents[0].dump().find(o.tunnel_secret), std::string::npos);
  ASSERT_TRUE(takeover().restore(target.workload, 60s));
  EXPECT_EQ(get_code(path_of("secrets", tunnel_secret_name(owner.id))), 404);
}

TEST_F(TakeoverKubesimObjects, AGoneConfigMapIsOneLineSayingHowToFinishByHand) {
  deploy("Deployment", "api", 1);
  auto o = options("api");
  auto target = takeover().locate(o);
  const auto owner = SessionOwner::current("0badc0de");
  takeover().install_agent(target, o, owner);
  client_->remove(path_of("configmaps", template_configmap_name(owner.id)));
  std::string message;
  try {
    takeover().restore(target.workload, 60s);
  } catch (const WorkloadError& e) {
    message = e.what();
  }
  EXPECT_TRUE(lpk::test::one_line(message)) << message;
  for (const char* part :
       {"ConfigMap lpk-original-0badc0de", "kubectl annotate", kOriginalConfigMapAnnotation}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  }
}

TEST_F(TakeoverKubesimObjects, TheRepairPathRemovesSecretsOfDeadSessionsOfThisMachineOnly) {
  deploy("Deployment", "api", 1);
  auto o = options("api");
  auto target = takeover().locate(o);
  auto make = [&](const SessionOwner& owner) {
    client_->create(
        kube::resource_path("v1", ns_, "secrets"),
        tunnel_secret(target.workload, target.object, owner.id, owner.to_json().dump(), "x"));
    return path_of("secrets", tunnel_secret_name(owner.id));
  };
  auto here = SessionOwner::current("a11ce000");
  auto dead = here;
  dead.id = "dead0002";
  dead.pid = reaped_pid();
  ASSERT_GT(dead.pid, 0);
  auto elsewhere = dead;
  elsewhere.id = "e15e0003";
  elsewhere.host = "another-machine";
  const auto live_secret = make(here), dead_secret = make(dead), other_secret = make(elsewhere);
  takeover().settle_earlier_session(target);
  EXPECT_EQ(get_code(dead_secret), 404);
  EXPECT_EQ(get_code(live_secret), 200) << "a live session still needs its secret";
  EXPECT_EQ(get_code(other_secret), 200) << "another machine's session cannot be judged here";
}

// No cluster: an API server that lets lpk create ConfigMaps but not Secrets, as a namespace
// whose RBAC predates the tunnel secret does.
TEST(TakeoverObjects, ASecretLpkMayNotCreateIsOneLineAndNothingIsLeftChanged) {
  std::mutex mutex;
  std::vector<std::string> seen;
  kube::test::FakeServer server([&](const kube::test::SeenRequest& r, int fd) {
    {
      std::lock_guard lock(mutex);
      seen.push_back(r.method + " " + r.target);
    }
    bool secret = r.target.find("/secrets") != std::string::npos;
    json body = secret ? json{{"kind", "Status"},
                              {"status", "Failure"},
                              {"reason", "Forbidden"},
                              {"code", 403},
                              {"message",
                               "secrets is forbidden: User \"dev\" cannot create "
                               "resource \"secrets\" in the namespace \"demo\""}}
                       : json{{"kind", "ConfigMap"}};
    kube::test::FakeServer::send_all(
        fd, kube::test::FakeServer::response(secret ? 403 : 201, body.dump()));
  });
  kube::RestConfig config;
  config.cluster.server = "http://127.0.0.1:" + std::to_string(server.port());
  config.source = "test";
  kube::Client client(config);
  console::Progress progress{false};
  Takeover takeover(client, progress);
  TakeoverTarget target;
  target.workload = {WorkloadKind::deployment, "demo", "api"};
  target.object = json::parse(R"({"kind":"Deployment","metadata":{"name":"api",
      "namespace":"demo","uid":"u"},"spec":{"selector":{"matchLabels":{"app":"api"}},
      "template":{"metadata":{"labels":{"app":"api"}},
                  "spec":{"containers":[{"name":"app","image":"a:1"}]}}}})");
  target.container.name = "app";
  TakeoverOptions options;
  options.tunnel_secret = "s";
  std::string message;
  try {
    takeover.install_agent(target, options, SessionOwner::current("f0f0f0f0"));
    ADD_FAILURE() << "installed without the Secret";
  } catch (const WorkloadError& e) {
    message = e.what();
  }
  EXPECT_TRUE(lpk::test::one_line(message)) << message;
  for (const char* part : {"may not create secrets in namespace demo", "create", "delete"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  }
  std::lock_guard lock(mutex);
  EXPECT_EQ(seen,
            (std::vector<std::string>{
                "POST /api/v1/namespaces/demo/configmaps", "POST /api/v1/namespaces/demo/secrets",
                "DELETE /api/v1/namespaces/demo/configmaps/lpk-original-f0f0f0f0"}))
      << "the ConfigMap goes again and the workload is never patched";
}

}  // namespace
}  // namespace lpk::proxy
