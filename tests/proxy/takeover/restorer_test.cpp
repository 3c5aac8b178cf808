#include "proxy/takeover/restorer.hpp"

#include <gtest/gtest.h>

#include "proxy/takeover/heartbeat.hpp"

namespace lpk::proxy {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

RestorerSpec spec_for(WorkloadKind kind) {
  return {{kind, "demo", "api"}, "0123abcd", "lpk/lpk-agent:dev", 20s};
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

TEST(Restorer, HeartbeatIsStaleOnlyOnceOlderThanTheTimeout) {
  auto lease = heartbeat_lease(spec_for(WorkloadKind::deployment), "host_0123abcd",
                               at("2026-12-06T10:00:00.000000Z"));
  EXPECT_FALSE(heartbeat_stale(lease, at("2026-12-06T10:00:19.999999Z"), 20s));
  EXPECT_FALSE(heartbeat_stale(lease, at("2026-12-06T10:00:20.000000Z"), 20s));
  EXPECT_TRUE(heartbeat_stale(lease, at("2026-12-06T10:00:20.000001Z"), 20s));
  // A renewal moves the age back.
  lease["spec"]["renewTime"] = lease_renewal(at("2026-12-06T10:00:15Z"))["spec"]["renewTime"];
  EXPECT_FALSE(heartbeat_stale(lease, at("2026-12-06T10:00:30Z"), 20s));
  EXPECT_TRUE(heartbeat_stale(lease, at("2026-12-06T10:00:36Z"), 20s));
  // A renewal in the future (a skewed clock) is not stale.
  EXPECT_FALSE(heartbeat_stale(lease, at("2026-12-06T09:00:00Z"), 20s));
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

TEST(Restorer, UnreadableLeaseIsNeverStale) {
  for (const json& lease : {json(nullptr), json::object(), json::array(),
                            json{{"spec", {{"renewTime", 5}}}},
                            json{{"spec", "x"}, {"metadata", {{"creationTimestamp", true}}}}}) {
    EXPECT_FALSE(heartbeat_stale(lease, at("2099-01-01T00:00:00Z"), 1s)) << lease.dump();
  }
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
