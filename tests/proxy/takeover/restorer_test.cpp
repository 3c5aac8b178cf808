#include "proxy/takeover/restorer.hpp"

#include <gtest/gtest.h>

#include "proxy/takeover/heartbeat.hpp"

namespace lpk::proxy {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

RestorerSpec spec_for(WorkloadKind kind) {
  return {{kind, "demo", "api"}, "0123abcd", "lpk/lpk-agent:dev", 20s, {}};
}

SystemTime at(const char* text) { return *parse_micro_time(text); }

TEST(Restorer, MicroTimeRoundTripsWithMicroseconds) {
  auto t = std::chrono::system_clock::from_time_t(1'796'000'000) + 123456us;
  EXPECT_EQ(micro_time(t), "2026-11-30T00:53:20.123456Z");
  EXPECT_EQ(parse_micro_time(micro_time(t)), t);
  // Time (whole seconds) and shorter fractions read too; what the API never writes does not.
  EXPECT_EQ(parse_micro_time("2026-11-30T00:53:20Z"), std::chrono::system_clock::from_time_t(1'796'000'000));
  EXPECT_EQ(parse_micro_time("2026-11-30T00:53:20.5Z"),
            std::chrono::system_clock::from_time_t(1'796'000'000) + 500ms);
  for (const char* bad : {"", "yesterday", "2026-11-30T00:53:20", "2026-11-30T00:53:20.Z",
                          "2026-11-30T00:53:20+01:00", "2026-11-30T00:53:20.1Zjunk"}) {
    EXPECT_FALSE(parse_micro_time(bad)) << bad;
  }
}

TEST(Restorer, HeartbeatIsStaleOnlyOnceUnrenewedForTheTimeoutOnTheRestorersOwnClock) {
  using Clock = HeartbeatObserver::Clock;
  const Clock::time_point t0{};
  // The developer's clock an hour behind the cluster's: renewals still count as renewals.
  auto lease = heartbeat_lease(spec_for(WorkloadKind::deployment), "host_0123abcd",
                               at("2026-12-06T09:00:00.000000Z"));
  HeartbeatObserver observer;
  EXPECT_FALSE(observer.stale(lease, t0, 20s)) << "the first look starts the count";
  EXPECT_FALSE(observer.stale(lease, t0 + 20s, 20s));
  EXPECT_TRUE(observer.stale(lease, t0 + 20s + 1ms, 20s));
  // A renewal (whatever its time says) starts the count again.
  lease["spec"]["renewTime"] = lease_renewal(at("2026-12-06T09:00:05Z"))["spec"]["renewTime"];
  EXPECT_FALSE(observer.stale(lease, t0 + 30s, 20s));
  EXPECT_FALSE(observer.stale(lease, t0 + 50s, 20s));
  EXPECT_TRUE(observer.stale(lease, t0 + 51s, 20s));
  // A Lease that goes missing counts from then; one that comes back, from then again.
  EXPECT_FALSE(observer.stale(nullptr, t0 + 60s, 20s));
  EXPECT_TRUE(observer.stale(nullptr, t0 + 81s, 20s));
  EXPECT_FALSE(observer.stale(lease, t0 + 82s, 20s));
}

TEST(Restorer, HeartbeatFallsBackToAcquireTimeThenCreation) {
  json lease = {{"metadata", {{"creationTimestamp", "2026-12-06T10:00:00Z"}}},
                {"spec", {{"acquireTime", "2026-12-06T10:01:00.000000Z"}}}};
  EXPECT_EQ(last_renewal(lease), at("2026-12-06T10:01:00Z"));
  lease["spec"].erase("acquireTime");
  EXPECT_EQ(last_renewal(lease), at("2026-12-06T10:00:00Z"));
  lease["spec"]["renewTime"] = "not a time";
  EXPECT_EQ(last_renewal(lease), at("2026-12-06T10:00:00Z"));
}

TEST(Restorer, ALeaseWithUnreadableTimesCountsAsRenewedWhenItChanges) {
  using Clock = HeartbeatObserver::Clock;
  const Clock::time_point t0{};
  HeartbeatObserver observer;
  json lease = {{"spec", {{"renewTime", 5}}}, {"metadata", {{"resourceVersion", "1"}}}};
  EXPECT_FALSE(observer.stale(lease, t0, 1s));
  lease["metadata"]["resourceVersion"] = "2";  // written again, times still unreadable
  EXPECT_FALSE(observer.stale(lease, t0 + 2s, 1s));
  EXPECT_TRUE(observer.stale(lease, t0 + 4s, 1s)) << "unchanged for longer than the timeout";
}

TEST(Restorer, LeaseIsWrittenAsLeaderElectionWritesIt) {
  auto lease = heartbeat_lease(spec_for(WorkloadKind::deployment), "laptop_0123abcd",
                               at("2026-12-06T10:00:00.25Z"));
  EXPECT_EQ(lease["apiVersion"], "coordination.k8s.io/v1");
  EXPECT_EQ(lease["metadata"]["name"], "lpk-session-0123abcd");
  EXPECT_EQ(lease["metadata"]["namespace"], "demo");
  EXPECT_EQ(lease["spec"]["holderIdentity"], "laptop_0123abcd");
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 20);
  EXPECT_EQ(lease["spec"]["renewTime"], "2026-12-06T10:00:00.250000Z");
  EXPECT_EQ(lease["spec"]["acquireTime"], lease["spec"]["renewTime"]);
}

const json* rule_for(const json& role, const std::string& resource) {
  for (const auto& r : role["rules"]) {
    for (const auto& res : r["resources"]) {
      if (res == resource) return &r;
    }
  }
  return nullptr;
}

TEST(Restorer, RoleAllowsOnlyThisWorkloadAndTheSessionsObjects) {
  auto role = restorer_role(spec_for(WorkloadKind::deployment), "sa-uid");
  EXPECT_EQ(role["metadata"]["name"], "lpk-restorer-0123abcd");
  EXPECT_EQ(role["metadata"]["ownerReferences"][0]["kind"], "ServiceAccount");
  EXPECT_EQ(role["metadata"]["ownerReferences"][0]["uid"], "sa-uid");
  const json* deployments = rule_for(role, "deployments");
  ASSERT_TRUE(deployments);
  EXPECT_EQ((*deployments)["apiGroups"], json({"apps"}));
  EXPECT_EQ((*deployments)["resourceNames"], json({"api"}));
  EXPECT_EQ((*deployments)["verbs"], json({"get", "update", "patch"}));
  EXPECT_FALSE(rule_for(role, "statefulsets"));
  EXPECT_EQ((*rule_for(role, "configmaps"))["resourceNames"], json({"lpk-original-0123abcd"}));
  EXPECT_EQ((*rule_for(role, "secrets"))["resourceNames"], json({"lpk-session-0123abcd"}));
  EXPECT_EQ((*rule_for(role, "leases"))["resourceNames"], json({"lpk-session-0123abcd"}));
  EXPECT_FALSE(rule_for(role, "jobs"));  // the Job goes with the ServiceAccount that owns it
  EXPECT_EQ((*rule_for(role, "serviceaccounts"))["resourceNames"], json({"lpk-restorer-0123abcd"}));
  EXPECT_EQ((*rule_for(role, "pods"))["verbs"], json({"list"}));
  // Every rule but listing pods and the agent's ReplicaSets names what it allows.
  for (const auto& r : role["rules"]) {
    if (r["resources"][0] == "pods" || r["resources"][0] == "replicasets") continue;
    EXPECT_TRUE(r.contains("resourceNames")) << r.dump();
  }
  auto sts = restorer_role(spec_for(WorkloadKind::statefulset), "sa-uid");
  EXPECT_EQ((*rule_for(sts, "statefulsets"))["resourceNames"], json({"api"}));
  EXPECT_EQ((*rule_for(sts, "pods"))["verbs"], json({"list", "delete"}));
  EXPECT_FALSE(rule_for(sts, "replicasets"));
}

TEST(Restorer, JobRunsRestoreWatchAsItsOwnAccount) {
  auto job = restorer_job(spec_for(WorkloadKind::deployment), "sa-uid");
  EXPECT_EQ(job["apiVersion"], "batch/v1");
  const auto& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["serviceAccountName"], "lpk-restorer-0123abcd");
  EXPECT_EQ(pod["containers"][0]["image"], "lpk/lpk-agent:dev");
  EXPECT_EQ(pod["containers"][0]["command"], json({"lpk-agent"}));
  EXPECT_EQ(pod["containers"][0]["args"],
            json({"restore-watch", "--workload", "Deployment/api", "--session", "0123abcd",
                  "--orphan-timeout", "20s"}));
  EXPECT_NE(pod["restartPolicy"], "Always");  // a Job refuses it
  // Not selected by the workload's Service: only lpk's labels.
  EXPECT_EQ(job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"],
            "lpk-restorer");
  auto binding = restorer_role_binding(spec_for(WorkloadKind::deployment), "sa-uid");
  EXPECT_EQ(binding["subjects"][0],
            json({{"kind", "ServiceAccount"}, {"name", "lpk-restorer-0123abcd"}, {"namespace", "demo"}}));
  EXPECT_EQ(binding["roleRef"]["name"], "lpk-restorer-0123abcd");
}

TEST(Restorer, HeartbeatRenewsSeveralTimesPerTimeout) {
  EXPECT_EQ(Heartbeat::interval_for(20s), 5s);
  EXPECT_EQ(Heartbeat::interval_for(600s), 5s);
  EXPECT_EQ(Heartbeat::interval_for(10s), 2500ms);
}

}  // namespace
}  // namespace lpk::proxy
