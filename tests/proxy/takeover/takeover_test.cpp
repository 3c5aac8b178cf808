// Takeover against lpk-kubesim --no-runtime (ctest entry proxy_takeover_kubesim): finding the
// workload and container behind a service, installing the agent and waiting for its pods,
// restoring exactly, the retry on 409 conflicts (through a relay that makes the conflicting write
// happen between the read and the write), settling an earlier session's leftovers, and listing
// the workloads lpk changed. SessionRecord's file on its own runs without a cluster.
#include "proxy/takeover/takeover.hpp"

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>

#include "proxy/takeover/route_objects.hpp"
#include "proxy/takeover/session_objects.hpp"
#include "tests/kube/fake_server.hpp"
#include "tests/proxy/takeover/kubesim_cluster.hpp"
#include "tests/temp_dir.hpp"
#include "tests/one_line.hpp"

namespace lpk::proxy {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using lpk::test::TempDir;

using lpk::test::one_line;

json annotations_of(const json& object) {
  return object["metadata"].value("annotations", json::object());
}

/// The WorkloadError `fn` throws (fails the test when it throws nothing or something else).
template <class Fn>
std::string workload_error(Fn&& fn) {
  try {
    fn();
  } catch (const WorkloadError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a WorkloadError: " << e.what();
    return {};
  }
  ADD_FAILURE() << "nothing thrown";
  return {};
}

/// A pid that no process has: a child that has exited and been reaped.
int dead_pid() {
  pid_t pid = 0;
  const char* argv[] = {"true", nullptr};
  if (posix_spawnp(&pid, "true", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    return 0;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

std::string this_host() {
  char buffer[256] = {};
  ::gethostname(buffer, sizeof buffer - 1);
  return buffer;
}

class TakeoverKubesim : public test::KubesimCluster {
 protected:
  TakeoverOptions options(const std::string& service) const {
    TakeoverOptions o;
    o.service = service;
    o.ns = ns_;
    o.agent_image = "lpk/lpk-agent:test";
    o.rollout_timeout = 60s;
    o.tunnel_secret = "the-test's-secret";
    return o;
  }
  /// The workload's annotations with lpk's: as an install by `owner` leaves them, without
  /// changing the template (settle only reads them).
  void mark_changed(const WorkloadRef& ref, const SessionOwner& owner) {
    auto object = client_->get(ref.path());
    json annotations = {{kOriginalAnnotation, kube::template_of(ref.kind, object).dump()},
                        {kSessionAnnotation, owner.to_json().dump()}};
    client_->patch(ref.path(), {{"metadata", {{"annotations", annotations}}}},
                   kube::PatchType::merge);
  }

  /// A Takeover through the test's client (which SetUp makes).
  Takeover takeover() { return Takeover(*client_, progress_); }

  console::Progress progress_{false};
};

TEST_F(TakeoverKubesim, LocatesTheDeploymentBehindAService) {
  deploy("Deployment", "api", 2);
  auto target = takeover().locate(options("api"));
  EXPECT_EQ(target.workload, (WorkloadRef{WorkloadKind::deployment, ns_, "api"}));
  EXPECT_EQ(target.object["kind"], "Deployment");
  EXPECT_EQ(target.service["metadata"]["name"], "api");
  EXPECT_EQ(target.container.name, "app");  // the sidecar declares no port
  ASSERT_EQ(target.container.routes.size(), 1u);
  EXPECT_EQ(target.container.routes[0].service_port, 80);
  EXPECT_EQ(target.container.routes[0].container_port, 8080);
  EXPECT_EQ(target.container.routes[0].name, "web");
  // The template's mount, then what admission added to the live pod (kubesim, as a real API
  // server, adds the service-account token's volume to the Pod object only).
  const std::vector<std::string> want = {"/etc/app",
                                         "/var/run/secrets/kubernetes.io/serviceaccount"};
  EXPECT_EQ(target.mounts, want);
  EXPECT_EQ(kube::template_of(target.workload.kind, target.object)["spec"]["containers"][0]
                .value("volumeMounts", json::array())
                .size(),
            1u)
      << "the template itself has only its own";
}

TEST_F(TakeoverKubesim, LocatesAStatefulSetAReplicaSetAndABarePod) {
  deploy("StatefulSet", "db", 2);
  deploy("ReplicaSet", "cache", 1);
  deploy("Pod", "solo", 1);
  EXPECT_EQ(takeover().locate(options("db")).workload,
            (WorkloadRef{WorkloadKind::statefulset, ns_, "db"}));
  EXPECT_EQ(takeover().locate(options("cache")).workload,
            (WorkloadRef{WorkloadKind::replicaset, ns_, "cache"}));
  auto solo = takeover().locate(options("solo"));
  EXPECT_EQ(solo.workload, (WorkloadRef{WorkloadKind::pod, ns_, "solo"}));
  EXPECT_EQ(solo.object["kind"], "Pod");
  EXPECT_EQ(solo.container.name, "app");
}

TEST_F(TakeoverKubesim, ContainerChosenByName) {
  deploy("Deployment", "api", 1);
  auto o = options("api");
  o.container = "sidecar";
  EXPECT_EQ(takeover().locate(o).container.name, "sidecar");
  o.container = "nope";
  auto error = workload_error([&] { takeover().locate(o); });
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("no container named nope (they have: app, sidecar)"), std::string::npos)
      << error;
}

TEST_F(TakeoverKubesim, ServicesItCannotUseAreOneLineErrors) {
  create(service("bare", ""));        // no selector
  create(service("ghost", "ghost"));  // selects nothing
  auto unknown = workload_error([&] { takeover().locate(options("missing")); });
  EXPECT_TRUE(one_line(unknown)) << unknown;
  EXPECT_NE(unknown.find("service missing not found in namespace " + ns_), std::string::npos)
      << unknown;
  EXPECT_NE(unknown.find("kubectl get services -n " + ns_), std::string::npos) << unknown;

  auto no_selector = workload_error([&] { takeover().locate(options("bare")); });
  EXPECT_TRUE(one_line(no_selector)) << no_selector;
  EXPECT_NE(no_selector.find("service bare has no selector"), std::string::npos) << no_selector;

  auto no_pods = workload_error([&] { takeover().locate(options("ghost")); });
  EXPECT_TRUE(one_line(no_pods)) << no_pods;
  EXPECT_NE(no_pods.find("service ghost selects no pods (app=ghost)"), std::string::npos)
      << no_pods;
}

// Every kind: install, wait for the agents, restore to the exact spec, restore again (nothing).
class TakeoverKubesimRoundTrip : public TakeoverKubesim,
                                 public ::testing::WithParamInterface<const char*> {};

TEST_P(TakeoverKubesimRoundTrip, InstallWaitRestore) {
  const std::string kind = GetParam();
  const int replicas = kind == "Pod" ? 1 : 2;
  // The StatefulSet's container serves the agent's default port: the agent moves up one.
  const std::uint16_t port = kind == "StatefulSet" ? tunnel::kDefaultAgentPort : 8080;
  deploy(kind, "web", replicas, port);
  auto o = options("web");
  auto target = takeover().locate(o);
  const auto path = target.workload.path();
  const auto before = client_->get(path);
  const auto original_template = kube::template_of(target.workload.kind, before);
  // A live pod of the workload as it was, with what admission added to it.
  auto before_pod = [&] {
    auto pods = client_->list(kube::resource_path("v1", ns_, "pods"))["items"];
    for (const auto& pod : pods) {
      if (kube::pod_active(pod) && kube::controller_of(pod).has_value() == (kind != "Pod")) {
        return pod;
      }
    }
    return json(nullptr);
  }();

  takeover().settle_earlier_session(target);  // nothing earlier: a no-op
  const auto owner = SessionOwner::current("0123abcd");
  takeover().install_agent(target, o, owner);
  const std::uint16_t tunnel_port =
      kind == "StatefulSet" ? tunnel::kDefaultAgentPort + 1 : tunnel::kDefaultAgentPort;
  EXPECT_EQ(target.tunnel_port, tunnel_port);
  auto agents = takeover().wait_for_agents(target, o);
  ASSERT_EQ(agents.size(), std::size_t(replicas));
  for (const auto& pod : agents) {
    EXPECT_TRUE(kube::pod_ready(pod));
    EXPECT_EQ(pod["spec"]["containers"][0]["image"], "lpk/lpk-agent:test");
  }

  const auto changed = client_->get(path);
  const auto annotations = annotations_of(changed);
  EXPECT_FALSE(annotations.contains(kOriginalAnnotation)) << "kept in a ConfigMap instead";
  const auto configmap = kube::resource_path("v1", ns_, "configmaps",
                                             annotations.value(kOriginalConfigMapAnnotation, ""));
  EXPECT_EQ(template_in_configmap(client_->get(configmap)), original_template);
  EXPECT_EQ(
      SessionOwner::from_json(json::parse(annotations.at(kSessionAnnotation).get<std::string>()))
          .to_json(),
      owner.to_json());
  const auto tmpl = kube::template_of(target.workload.kind, changed);
  const auto& app = tmpl["spec"]["containers"][0];
  EXPECT_EQ(app["name"], "app");
  EXPECT_EQ(app["image"], "lpk/lpk-agent:test");
  EXPECT_EQ(app["command"], json::array({"lpk-agent"}));
  const auto args = app["args"];
  EXPECT_EQ(args[0], "--listen");
  EXPECT_EQ(args[1], "127.0.0.1:" + std::to_string(tunnel_port));
  // --report-mounts: the template's mounts and those admission added to the live pods (the
  // service-account token, when the cluster adds it to the Pod object as real ones do).
  auto reported = std::find(args.begin(), args.end(), "--report-mounts");
  ASSERT_NE(reported, args.end()) << args;
  const std::string mounts = (reported + 1)->get<std::string>() + ",";
  EXPECT_NE(mounts.find("/etc/app,"), std::string::npos) << mounts;
  for (const auto& c : before_pod["spec"]["containers"]) {
    if (c.value("name", "") != "app") continue;
    for (const auto& m : c.value("volumeMounts", json::array())) {
      EXPECT_NE(mounts.find(m.value("mountPath", "") + ","), std::string::npos) << mounts;
    }
  }
  EXPECT_FALSE(app.contains("readinessProbe"));
  // The container's own env, then the tunnel secret by reference (never its value).
  auto env = app["env"];
  ASSERT_FALSE(env.empty());
  EXPECT_EQ(env.back()["valueFrom"]["secretKeyRef"]["name"], tunnel_secret_name(owner.id));
  env.erase(env.size() - 1);
  EXPECT_EQ(env, original_template["spec"]["containers"][0]["env"]);
  EXPECT_EQ(tmpl["spec"]["containers"][1], original_template["spec"]["containers"][1]);

  ASSERT_TRUE(takeover().restore(target.workload, 60s));
  const auto after = client_->get(path);
  EXPECT_EQ(after["spec"], before["spec"]);
  // The revision the Deployment controller counts is the only annotation that may differ: a
  // real one gives the restored template a new revision number.
  auto without_revision = [](json a) {
    a.erase("deployment.kubernetes.io/revision");
    return a;
  };
  EXPECT_EQ(without_revision(annotations_of(after)), without_revision(annotations_of(before)));
  ASSERT_TRUE(pods_->wait_ready("web", std::size_t(replicas), "app", "demo/web:1"));
  EXPECT_FALSE(takeover().restore(target.workload, 60s)) << "restored twice";
  for (const auto& gone : {configmap, kube::resource_path("v1", ns_, "secrets",
                                                          tunnel_secret_name(owner.id))}) {
    EXPECT_THROW(client_->get(gone), kube::ApiError) << gone << " outlived the restore";
  }
  if (kind == "Deployment") {
    // The agent's ReplicaSet is gone: `kubectl rollout undo` cannot bring the agent back.
    auto sets = client_->list(kube::resource_path("apps/v1", ns_, "replicasets"));
    for (const auto& rs : sets["items"]) {
      for (const auto& c : rs["spec"]["template"]["spec"]["containers"]) {
        EXPECT_NE(c.value("image", ""), "lpk/lpk-agent:test") << rs["metadata"]["name"];
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, TakeoverKubesimRoundTrip,
                         ::testing::Values("Deployment", "StatefulSet", "ReplicaSet", "Pod"));

TEST_F(TakeoverKubesim, RestoreOfAWorkloadThatIsGoneIsNothingToDo) {
  EXPECT_FALSE(takeover().restore({WorkloadKind::deployment, ns_, "gone"}, 10s));
}

/// An HTTP relay in front of kubesim for a second client: forwards each request through the
/// real client and answers with what kubesim answered; `before_put` runs before a PUT is sent.
class Relay {
 public:
  Relay(kube::Client& upstream, std::function<void(const std::string& path)> before_put)
      : upstream_(upstream),
        before_put_(std::move(before_put)),
        server_([this](const kube::test::SeenRequest& r, int fd) { relay(r, fd); }) {}

  kube::RestConfig config() const {
    kube::RestConfig c;
    c.cluster.server = "http://127.0.0.1:" + std::to_string(server_.port());
    c.source = "relay";
    return c;
  }
  /// "PUT /apis/... 409", in order.
  std::vector<std::string> log() {
    std::lock_guard lock(mutex_);
    return log_;
  }

 private:
  void relay(const kube::test::SeenRequest& r, int fd) {
    int code = 200;
    json body;
    try {
      if (r.method == "GET") body = upstream_.get(r.target);
      if (r.method == "DELETE") upstream_.remove(r.target), body = json{{"kind", "Status"}};
      if (r.method == "POST") body = upstream_.create(r.target, json::parse(r.body));
      if (r.method == "PUT") {
        before_put_(r.target);
        body = upstream_.replace(r.target, json::parse(r.body));
      }
      if (r.method == "PATCH") {
        auto type = r.header("content-type") == "application/merge-patch+json"
                        ? kube::PatchType::merge
                        : kube::PatchType::strategic_merge;
        body = upstream_.patch(r.target, json::parse(r.body), type);
      }
    } catch (const kube::ApiError& e) {
      code = e.code ? e.code : 502;
      body = e.status.is_null() ? json{{"kind", "Status"}, {"message", e.what()}} : e.status;
    }
    {
      std::lock_guard lock(mutex_);
      log_.push_back(r.method + " " + r.target + " " + std::to_string(code));
    }
    kube::test::FakeServer::send_all(fd, kube::test::FakeServer::response(code, body.dump()));
  }

  kube::Client& upstream_;
  std::function<void(const std::string&)> before_put_;
  std::mutex mutex_;
  std::vector<std::string> log_;
  kube::test::FakeServer server_;  // last: stops before what its handler uses
};

/// The requests of `log` that start with `prefix` ("PUT /api/...").
std::vector<std::string> requests(const std::vector<std::string>& log, const std::string& prefix) {
  std::vector<std::string> found;
  for (const auto& line : log) {
    if (line.rfind(prefix, 0) == 0) found.push_back(line);
  }
  return found;
}

// A session whose join failed before it was in the Service's sessions (restore still calls
// leave_route) writes no Service: with others routing it, nothing at all; with none, it only
// removes the router. The last session that was in them gives the Service back with one PUT.
TEST_F(TakeoverKubesim, LeavingARouteTheSessionNeverJoinedWritesNoService) {
  create(service("api", "api", 80));
  const auto path = kube::resource_path("v1", ns_, "services", "api");
  const auto router = kube::resource_path("apps/v1", ns_, "deployments", router_name("api"));
  Relay relay(*client_, [](const std::string&) {});
  kube::Client through_relay(relay.config());
  Takeover via_relay(through_relay, progress_);

  via_relay.leave_route(ns_, "api", "5eed0003");  // not routed at all
  EXPECT_TRUE(requests(relay.log(), "PUT " + path + " ").empty());
  EXPECT_EQ(requests(relay.log(), "DELETE " + router).size(), 1u) << "the router is removed";

  RouteMembers others{{"5eed0004", {RouteSpec{"x-lpk-route", "other"}, "lpk-route-api", "{}"}}};
  client_->replace(path, with_route_members(client_->get(path), others));
  const auto routed = client_->get(path);
  const auto before = relay.log().size();
  via_relay.leave_route(ns_, "api", "5eed0003");  // another session routes it
  const auto log = relay.log();
  const std::vector<std::string> since(log.begin() + std::ptrdiff_t(before), log.end());
  EXPECT_TRUE(requests(since, "PUT " + path + " ").empty());
  EXPECT_TRUE(requests(since, "DELETE " + router).empty()) << "the other still routes";
  EXPECT_EQ(client_->get(path)["metadata"]["resourceVersion"],
            routed["metadata"]["resourceVersion"]);

  via_relay.leave_route(ns_, "api", "5eed0004");  // the one that routes it leaves
  EXPECT_EQ(requests(relay.log(), "PUT " + path + " "),
            (std::vector<std::string>{"PUT " + path + " 200"}));
  const auto after = client_->get(path);
  EXPECT_TRUE(route_members(after).empty());
  EXPECT_EQ(after["spec"]["selector"], (json{{"app", "api"}}));
}

TEST_F(TakeoverKubesim, RestoreReadsAgainAndRetriesWhenAWriteCameBetween) {
  deploy("Deployment", "api", 1);
  auto o = options("api");
  auto target = takeover().locate(o);
  const auto before = client_->get(target.workload.path());
  takeover().install_agent(target, o, SessionOwner::current("5eed0001"));
  takeover().wait_for_agents(target, o);

  // The first PUT finds the deployment changed since restore read it (a label, as another
  // client or a controller would write): kubesim answers 409.
  int conflicts = 0;
  Relay relay(*client_, [&](const std::string& path) {
    if (path != target.workload.path() || conflicts++ > 0) return;
    client_->patch(path, {{"metadata", {{"labels", {{"touched", "yes"}}}}}},
                   kube::PatchType::merge);
  });
  kube::Client through_relay(relay.config());
  ASSERT_TRUE(Takeover(through_relay, progress_).restore(target.workload, 60s));

  std::vector<std::string> puts;
  for (const auto& line : relay.log()) {
    if (line.rfind("PUT ", 0) == 0) puts.push_back(line);
  }
  const auto put = "PUT " + target.workload.path();
  EXPECT_EQ(puts, (std::vector<std::string>{put + " 409", put + " 200"}));
  const auto after = client_->get(target.workload.path());
  EXPECT_EQ(after["metadata"]["labels"]["touched"], "yes") << "the retry wrote a stale object";
  EXPECT_EQ(after["spec"], before["spec"]);
  EXPECT_FALSE(carries_original(after));
}

TEST_F(TakeoverKubesim, RestoreGivesUpAfterTenConflictsWithTheServersError) {
  deploy("Deployment", "api", 1);
  auto o = options("api");
  auto target = takeover().locate(o);
  takeover().install_agent(target, o, SessionOwner::current("5eed0002"));
  int n = 0;
  Relay relay(*client_, [&](const std::string& path) {
    client_->patch(path, {{"metadata", {{"labels", {{"touched", std::to_string(++n)}}}}}},
                   kube::PatchType::merge);
  });
  kube::Client through_relay(relay.config());
  try {
    Takeover(through_relay, progress_).restore(target.workload, 60s);
    ADD_FAILURE() << "restore did not give up";
  } catch (const kube::ApiError& e) {
    EXPECT_EQ(e.code, 409) << e.what();
    EXPECT_TRUE(one_line(e.what())) << e.what();
  }
  EXPECT_EQ(n, 11);  // the first attempt and ten more
  EXPECT_TRUE(carries_original(client_->get(target.workload.path())));
}

TEST_F(TakeoverKubesim, AnEarlierSessionOfThisMachineThatIsGoneIsRepairedFirst) {
  deploy("Deployment", "api", 2);
  auto o = options("api");
  auto first = takeover().locate(o);
  const auto before = client_->get(first.workload.path());
  SessionOwner gone{"dead0001", this_host(), dead_pid(), "2024-05-01T10:00:00Z", ""};
  ASSERT_GT(gone.pid, 0);
  ASSERT_FALSE(gone.alive_here());
  // As connect does: the record first, in this machine's state directory, then the change.
  env_.set("XDG_STATE_HOME", dir_ / "state");
  SessionRecord{gone, first.workload, sim_->kubeconfig, ""}.save();
  takeover().install_agent(first, o, gone);
  takeover().wait_for_agents(first, o);
  // What `lpk-proxy restore` would find: the record of a session whose process is gone.
  auto records = SessionRecord::load_all();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].workload, first.workload);
  EXPECT_FALSE(records[0].owner.alive_here());

  // A new session finds the agent in place; locate still names the original container.
  auto target = takeover().locate(o);
  EXPECT_EQ(target.container.name, "app");
  EXPECT_EQ(target.container.routes.at(0).container_port, 8080);
  takeover().settle_earlier_session(target);
  EXPECT_FALSE(carries_original(target.object));
  const auto after = client_->get(target.workload.path());
  EXPECT_EQ(after["spec"], before["spec"]);
  EXPECT_TRUE(pods_->wait_ready("api", 2, "app", "demo/api:1"));
  EXPECT_TRUE(SessionRecord::load_all().empty()) << "the repaired session's record stays behind";
}

TEST_F(TakeoverKubesim, AFailedPodOfTheWorkloadDoesNotHoldTheRolloutBack) {
  // An evicted pod stays listed as Failed; controllers do not count it, and neither may lpk.
  deploy("Deployment", "api", 2);
  auto evicted = bare_pod("api-evicted");
  evicted["metadata"]["labels"] = {{"app", "api"}};
  create(evicted);
  auto path = kube::resource_path("v1", ns_, "pods", "api-evicted");
  auto pod = client_->get(path);
  pod["status"] = {{"phase", "Failed"}, {"reason", "Evicted"},
                   {"message", "The node was low on resource: memory."}};
  client_->replace(path + "/status", pod);
  ASSERT_EQ(client_->get(path)["status"]["phase"], "Failed");
  auto o = options("api");
  o.rollout_timeout = 30s;
  auto target = takeover().locate(o);
  takeover().install_agent(target, o, SessionOwner::current("ev1c7ed0"));
  EXPECT_EQ(takeover().wait_for_agents(target, o).size(), 2u);
  EXPECT_TRUE(takeover().restore(target.workload, 30s));
}

TEST_F(TakeoverKubesim, TheTunnelPortAvoidsEveryPortOfThePod) {
  // A sidecar listens on the agent's default port: the pod's network namespace is shared.
  auto w = workload("Deployment", "api", 1);
  w["spec"]["template"]["spec"]["containers"][1]["ports"] = {
      {{"containerPort", tunnel::kDefaultAgentPort}, {"name", "admin"}}};
  create(w);
  create(service("api", "api"));
  ASSERT_TRUE(pods_->wait_ready("api", 1));
  auto o = options("api");
  auto target = takeover().locate(o);
  takeover().install_agent(target, o, SessionOwner::current("51decar0"));
  EXPECT_EQ(target.tunnel_port, tunnel::kDefaultAgentPort + 1);
  takeover().wait_for_agents(target, o);
  EXPECT_TRUE(takeover().restore(target.workload, 30s));
}

TEST_F(TakeoverKubesim, ALiveSessionOfThisMachineIsRefused) {
  deploy("Deployment", "api", 1);
  auto target = takeover().locate(options("api"));
  const auto me = SessionOwner::current("11ve0001");
  mark_changed(target.workload, me);
  target = takeover().locate(options("api"));
  auto error = workload_error([&] { takeover().settle_earlier_session(target); });
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("deployment " + ns_ +
                       "/api is already connected by lpk session 11ve0001 "
                       "(pid " +
                       std::to_string(::getpid()) +
                       " on this machine); stop that "
                       "session first"),
            std::string::npos)
      << error;
  // Nothing was touched.
  EXPECT_TRUE(annotations_of(client_->get(target.workload.path())).contains(kSessionAnnotation));
}

TEST_F(TakeoverKubesim, ASessionOfAnotherHostIsRefused) {
  deploy("Deployment", "api", 1);
  auto target = takeover().locate(options("api"));
  mark_changed(target.workload, {"far00001", "elsewhere.example", 1, "2024-05-01T10:00:00Z", ""});
  target = takeover().locate(options("api"));
  auto error = workload_error([&] { takeover().settle_earlier_session(target); });
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("was changed by lpk session far00001 on host elsewhere.example"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("lpk-proxy restore --all -n " + ns_), std::string::npos) << error;
}

TEST_F(TakeoverKubesim, ChangedWorkloadsAreThoseCarryingTheOriginal) {
  deploy("Deployment", "api", 1);
  deploy("StatefulSet", "db", 1);
  deploy("ReplicaSet", "cache", 1);
  deploy("Pod", "solo", 1);
  deploy("Deployment", "untouched", 1);
  EXPECT_TRUE(takeover().changed_workloads(ns_).empty());
  const auto owner = SessionOwner::current("c0ffee01");
  std::vector<WorkloadRef> marked = {{WorkloadKind::deployment, ns_, "api"},
                                     {WorkloadKind::statefulset, ns_, "db"},
                                     {WorkloadKind::replicaset, ns_, "cache"},
                                     {WorkloadKind::pod, ns_, "solo"}};
  for (const auto& ref : marked) mark_changed(ref, owner);
  EXPECT_EQ(takeover().changed_workloads(ns_), marked);
  // All namespaces: ours are among them.
  auto everywhere = takeover().changed_workloads("");
  for (const auto& ref : marked) {
    EXPECT_NE(std::find(everywhere.begin(), everywhere.end(), ref), everywhere.end())
        << ref.describe();
  }
}

TEST_F(TakeoverKubesim, AnOutboundOnlyAgentRunsInADeploymentOfItsOwnThatRestoreDeletes) {
  deploy("Deployment", "api", 1);
  const auto before = client_->get(kube::resource_path("apps/v1", ns_, "deployments", "api"));
  auto t = takeover();
  const auto owner = SessionOwner::current("0b0b0b0b");
  auto wanted = options("");
  auto target = t.outbound_target(ns_, owner.id);
  EXPECT_EQ(target.workload.name, "lpk-outbound-0b0b0b0b");
  t.install_outbound_agent(target, wanted, owner);
  auto agents = t.wait_for_agents(target, wanted);
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0]["metadata"]["labels"][kSessionLabel], "0b0b0b0b");
  const auto secret_path = kube::resource_path("v1", ns_, "secrets", "lpk-session-0b0b0b0b");
  auto secret = client_->get(secret_path);
  EXPECT_EQ(secret["metadata"]["ownerReferences"][0]["name"], "lpk-outbound-0b0b0b0b");
  EXPECT_EQ(t.changed_workloads(ns_), std::vector<WorkloadRef>{target.workload});
  // Nothing of the application changed.
  auto api = client_->get(kube::resource_path("apps/v1", ns_, "deployments", "api"));
  EXPECT_EQ(api["spec"], before["spec"]);
  EXPECT_FALSE(annotations_of(api).contains(kSessionAnnotation));

  EXPECT_TRUE(t.restore(target.workload, 60s));
  auto gone = [&](const std::string& path) {
    try {
      client_->get(path);
    } catch (const kube::ApiError& e) {
      return e.code == 404;
    }
    return false;
  };
  EXPECT_TRUE(gone(target.workload.path()));
  EXPECT_TRUE(gone(secret_path));
  kube::ListOptions labelled;
  labelled.label_selector = std::string(kSessionLabel) + "=0b0b0b0b";
  EXPECT_TRUE(client_->list(kube::resource_path("v1", ns_, "pods"), labelled)["items"].empty());
  EXPECT_TRUE(t.changed_workloads(ns_).empty());
  EXPECT_FALSE(t.restore(target.workload, 60s)) << "gone: nothing left to restore";
}

TEST_F(TakeoverKubesim, AnOnDeleteStatefulSetIsTakenOverAndRestoredByDeletingItsPods) {
  // OnDelete: the controller never replaces a pod when the template changes (issue 9 item 4).
  auto sts = workload("StatefulSet", "db", 2);
  sts["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
  create(sts);
  create(service("db", "db"));
  ASSERT_TRUE(pods_->wait_ready("db", 2));
  auto o = options("db");
  auto target = takeover().locate(o);
  const auto before = client_->get(target.workload.path());
  takeover().install_agent(target, o, SessionOwner::current("0de1e7e0"));
  auto agents = takeover().wait_for_agents(target, o);
  EXPECT_EQ(agents.size(), 2u);
  ASSERT_TRUE(takeover().restore(target.workload, 60s));
  EXPECT_EQ(client_->get(target.workload.path())["spec"], before["spec"]);
  EXPECT_TRUE(pods_->wait_ready("db", 2, "app", "demo/db:1"));
}

TEST_F(TakeoverKubesim, APartitionedStatefulSetRunsTheAgentFromItsPartitionUp) {
  // partition 1 of 3: db-1 and db-2 are updated, db-0 keeps the original; the rollout is
  // complete as kubectl says ("partitioned roll out complete"), not never.
  auto sts = workload("StatefulSet", "db", 3);
  sts["spec"]["updateStrategy"] = {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 1}}}};
  create(sts);
  create(service("db", "db"));
  ASSERT_TRUE(pods_->wait_ready("db", 3));
  auto o = options("db");
  auto target = takeover().locate(o);
  const auto before = client_->get(target.workload.path());
  takeover().install_agent(target, o, SessionOwner::current("9a7e0001"));
  auto agents = takeover().wait_for_agents(target, o);
  std::vector<std::string> names;
  for (const auto& pod : agents) names.push_back(pod["metadata"]["name"]);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"db-1", "db-2"}));
  auto db0 = client_->get(kube::resource_path("v1", ns_, "pods", "db-0"));
  EXPECT_EQ(db0["spec"]["containers"][0]["image"], "demo/db:1");
  ASSERT_TRUE(takeover().restore(target.workload, 60s));
  EXPECT_EQ(client_->get(target.workload.path())["spec"], before["spec"]);
  EXPECT_TRUE(pods_->wait_ready("db", 3, "app", "demo/db:1"));
}

TEST_F(TakeoverKubesim, ReplicaSetsCarryingADeploymentsAnnotationsAreNotRestoredAlone) {
  // The real Deployment controller copies a Deployment's annotations, lpk's included, to its
  // ReplicaSets: `restore --all` must restore the Deployment, not PUT a template into its RS.
  deploy("Deployment", "api", 1);
  auto deployment = client_->get(kube::resource_path("apps/v1", ns_, "deployments", "api"));
  json rs = {{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"},
             {"metadata", {{"name", "api-copy"}, {"namespace", ns_},
                           {"ownerReferences", json::array({{{"apiVersion", "apps/v1"},
                                                             {"kind", "Deployment"},
                                                             {"name", "api"},
                                                             {"uid", deployment["metadata"]["uid"]},
                                                             {"controller", true}}})}}},
             {"spec", {{"replicas", 0}, {"selector", deployment["spec"]["selector"]},
                       {"template", deployment["spec"]["template"]}}}};
  client_->create(kube::resource_path("apps/v1", ns_, "replicasets"), rs);
  const auto owner = SessionOwner::current("c0ffee02");
  mark_changed({WorkloadKind::deployment, ns_, "api"}, owner);
  mark_changed({WorkloadKind::replicaset, ns_, "api-copy"}, owner);
  const std::vector<WorkloadRef> want = {{WorkloadKind::deployment, ns_, "api"}};
  EXPECT_EQ(takeover().changed_workloads(ns_), want);
}

TEST_F(TakeoverKubesim, AWorkloadManagedByAnotherControllerIsRefusedNamingIt) {
  deploy("Deployment", "api", 1);
  const auto path = kube::resource_path("apps/v1", ns_, "deployments", "api");
  json owners = json::array({{{"apiVersion", "argoproj.io/v1alpha1"}, {"kind", "Rollout"},
                              {"name", "api-rollout"}, {"uid", "0000-1111"},
                              {"controller", true}}});
  client_->patch(path, {{"metadata", {{"ownerReferences", owners}}}}, kube::PatchType::merge);
  auto error = workload_error([&] { takeover().locate(options("api")); });
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("is managed by Rollout api-rollout"), std::string::npos) << error;
}

TEST_F(TakeoverKubesim, RestoreRefusesATemplateChangedDuringTheSessionUnlessForced) {
  deploy("Deployment", "api", 1);
  auto o = options("api");
  auto target = takeover().locate(o);
  const auto before = client_->get(target.workload.path());
  takeover().install_agent(target, o, SessionOwner::current("9e7c0001"));
  takeover().wait_for_agents(target, o);
  // What a GitOps sync or `kubectl set image` does meanwhile.
  auto changed = client_->get(target.workload.path());
  changed["spec"]["template"]["spec"]["containers"][0]["image"] = "demo/api:2";
  client_->replace(target.workload.path(), changed);

  auto error = workload_error([&] { takeover().restore(target.workload, 60s); });
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_NE(error.find("image lpk/lpk-agent:test -> demo/api:2"), std::string::npos) << error;
  EXPECT_NE(error.find("--force"), std::string::npos) << error;
  EXPECT_TRUE(carries_original(client_->get(target.workload.path())));

  ASSERT_TRUE(takeover().restore(target.workload, 60s, /*force=*/true));
  EXPECT_EQ(client_->get(target.workload.path())["spec"], before["spec"]);
}

// The record a session keeps on this machine, in $XDG_STATE_HOME (no cluster needed).
TEST(SessionRecord, SavedPrivatelyLoadedAndErased) {
  TempDir dir;
  kube::test::ScopedEnv env{{"XDG_STATE_HOME", dir.path()}};
  SessionRecord record{SessionOwner::current("abcd0123"),
                       {WorkloadKind::statefulset, "demo", "db"},
                       "/home/dev/.kube/config",
                       "kind-dev"};
  record.save();
  const auto path = dir / "lpk/sessions/abcd0123.json";
  EXPECT_EQ(record.path().string(), path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  dir.write("lpk/sessions/garbage.json", "{not json");
  dir.write("lpk/sessions/unknown-kind.json", R"({"workload":{"kind":"CronJob"}})");
  auto all = SessionRecord::load_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].to_json(), record.to_json());
  EXPECT_TRUE(all[0].owner.on_this_host());
  EXPECT_TRUE(all[0].owner.alive_here());  // this test's own pid
  record.erase();
  record.erase();  // idempotent
  EXPECT_TRUE(SessionRecord::load_all().empty());
}

TEST(SessionOwner, ReadsWhatItCanFromAnnotationJson) {
  auto owner = SessionOwner::from_json(json::parse(R"({"id":"x","pid":"12","host":7})"));
  EXPECT_EQ(owner.id, "x");
  EXPECT_EQ(owner.pid, 0);
  EXPECT_EQ(owner.host, "");
  EXPECT_FALSE(owner.alive_here());
  EXPECT_EQ(SessionOwner::from_json(json::array()).id, "");
  EXPECT_FALSE((SessionOwner{"y", this_host(), dead_pid(), "", ""}).alive_here());
}

}  // namespace
}  // namespace lpk::proxy
