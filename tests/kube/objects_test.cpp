// Kubernetes object facts: kinds and paths, controller references, templates, readiness,
// rollout completion, selectors and service target ports, including malformed objects.
#include "kube/objects.hpp"

#include <gtest/gtest.h>

namespace lpk::kube {
namespace {

using nlohmann::json;

TEST(Workload, KindsPathsAndDescriptions) {
  WorkloadRef ref{WorkloadKind::statefulset, "demo", "db"};
  EXPECT_EQ(ref.describe(), "statefulset demo/db");
  EXPECT_EQ(ref.path(), "/apis/apps/v1/namespaces/demo/statefulsets/db");
  EXPECT_EQ((WorkloadRef{WorkloadKind::pod, "demo", "solo"}).path(),
            "/api/v1/namespaces/demo/pods/solo");
  EXPECT_EQ(workload_kind("ReplicaSet"), WorkloadKind::replicaset);
  EXPECT_FALSE(workload_kind("Job"));
  EXPECT_FALSE(workload_kind("deployment")) << "kinds are case-sensitive in ownerReferences";
}

TEST(Controller, OnlyTheControllingOwnerCounts) {
  auto pod = json::parse(R"({"metadata":{"ownerReferences":[
      {"kind":"ConfigMap","name":"c"},
      {"kind":"ReplicaSet","name":"api-5d9","controller":true,"apiVersion":"apps/v1"}]}})");
  auto owner = controller_of(pod);
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->kind, "ReplicaSet");
  EXPECT_EQ(owner->name, "api-5d9");
  EXPECT_EQ(owner->api_version, "apps/v1");
  EXPECT_FALSE(controller_of(json::parse(R"({"metadata":{}})")));
  EXPECT_FALSE(controller_of(json::parse(R"({"metadata":{"ownerReferences":"oops"}})")));
  EXPECT_FALSE(controller_of(json::parse(R"([1,2])")));
}

TEST(Template, BarePodIsReducedToLabelsAnnotationsAndSpec) {
  auto pod = json::parse(R"({"metadata":{"name":"solo","uid":"u","labels":{"a":"b"}},
      "spec":{"containers":[]},"status":{"phase":"Running"}})");
  auto tmpl = template_of(WorkloadKind::pod, pod);
  EXPECT_EQ(tmpl, json::parse(R"({"metadata":{"labels":{"a":"b"}},"spec":{"containers":[]}})"));
  auto d = json::parse(R"({"spec":{"template":{"spec":{"x":1}}}})");
  EXPECT_EQ(template_of(WorkloadKind::deployment, d), d["spec"]["template"]);
}

TEST(TargetPort, NumbersNamesAndMalformedValues) {
  EXPECT_EQ(target_port_of(json::parse(R"({"port":80})")).number, 80);
  EXPECT_EQ(target_port_of(json::parse(R"({"port":80,"targetPort":8080})")).number, 8080);
  EXPECT_EQ(target_port_of(json::parse(R"({"port":80,"targetPort":"8080"})")).number, 8080);
  EXPECT_EQ(target_port_of(json::parse(R"({"port":80,"targetPort":"http"})")).name, "http");
  // A number too large for a port is not a number: it can only name a port (and match none).
  auto huge = target_port_of(json::parse(R"({"port":80,"targetPort":"99999999999"})"));
  EXPECT_EQ(huge.number, 0);
  auto container = json::parse(R"({"ports":[{"containerPort":8080,"name":"http"}]})");
  bool declared = false;
  EXPECT_EQ(container_port_for({0, "http"}, container, declared), 8080);
  EXPECT_TRUE(declared);
  EXPECT_EQ(container_port_for({9090, ""}, container, declared), 9090);
  EXPECT_FALSE(declared) << "a number reaches the container whether declared or not";
  EXPECT_FALSE(container_port_for({0, "metrics"}, container, declared));
}

TEST(Rollout, DeploymentIsDoneOnlyWhenEveryReplicaIsUpdatedAndAvailable) {
  auto d = json::parse(R"({"metadata":{"name":"api","namespace":"demo","generation":3},
    "spec":{"replicas":2},
    "status":{"observedGeneration":3,"replicas":2,"updatedReplicas":2,"availableReplicas":2}})");
  EXPECT_TRUE(rollout_complete(WorkloadKind::deployment, d));
  d["metadata"]["generation"] = 4;
  EXPECT_FALSE(rollout_complete(WorkloadKind::deployment, d)) << "controller has not seen it";
  d["status"]["observedGeneration"] = 4;
  d["status"]["replicas"] = 3;  // an old pod still terminating
  EXPECT_FALSE(rollout_complete(WorkloadKind::deployment, d));
}

TEST(Rollout, StatefulSetStrategiesAsKubectlRolloutStatusReadsThem) {
  auto sts = json::parse(R"({"metadata":{"name":"db","generation":2},
    "spec":{"replicas":3},
    "status":{"observedGeneration":2,"replicas":3,"readyReplicas":3,"updatedReplicas":3,
              "currentRevision":"db-1","updateRevision":"db-2"}})");
  // No strategy (old objects): the revisions must have moved.
  EXPECT_FALSE(rollout_complete(WorkloadKind::statefulset, sts));
  sts["status"]["currentRevision"] = "db-2";
  EXPECT_TRUE(rollout_complete(WorkloadKind::statefulset, sts));
  // A partition of 1: two updated pods are a complete partitioned rollout, one is not.
  sts["spec"]["updateStrategy"] = {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 1}}}};
  sts["status"]["currentRevision"] = "db-1";
  sts["status"]["updatedReplicas"] = 2;
  EXPECT_TRUE(rollout_complete(WorkloadKind::statefulset, sts));
  EXPECT_EQ(statefulset_partition(sts), 1);
  sts["status"]["updatedReplicas"] = 1;
  EXPECT_FALSE(rollout_complete(WorkloadKind::statefulset, sts));
  // OnDelete: every pod updated (by whoever deleted them), no partition.
  sts["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
  EXPECT_TRUE(updates_on_delete(WorkloadKind::statefulset, sts));
  EXPECT_FALSE(updates_on_delete(WorkloadKind::deployment, sts));
  EXPECT_EQ(statefulset_partition(sts), 0);
  EXPECT_FALSE(rollout_complete(WorkloadKind::statefulset, sts));
  sts["status"]["updatedReplicas"] = 3;
  EXPECT_TRUE(rollout_complete(WorkloadKind::statefulset, sts));
  sts["status"]["readyReplicas"] = 2;
  EXPECT_FALSE(rollout_complete(WorkloadKind::statefulset, sts));

  EXPECT_EQ(pod_ordinal(json{{"metadata", {{"name", "db-12"}}}}), 12);
  EXPECT_EQ(pod_ordinal(json{{"metadata", {{"name", "db-x"}}}}), -1);
  EXPECT_EQ(pod_ordinal(json{{"metadata", {{"name", "db-"}}}}), -1);
  EXPECT_EQ(pod_ordinal(json::array()), -1);
}

TEST(Selector, MatchLabelsAndExpressionsInKubectlSyntax) {
  auto sel = json::parse(R"({"matchLabels":{"app":"api","tier":"be"},
    "matchExpressions":[{"key":"env","operator":"In","values":["a","b"]},
                        {"key":"x","operator":"NotIn","values":["c"]},
                        {"key":"y","operator":"Exists"},{"key":"z","operator":"DoesNotExist"}]})");
  EXPECT_EQ(selector_text(sel), "app=api,tier=be,env in (a,b),x notin (c),y,!z");
  auto service = json::parse(R"({"spec":{"selector":{"app":"api"}}})");
  EXPECT_EQ(service_selector_text(service), "app=api");
}

TEST(PodReady, NeedsRunningReadyAndNotDeleting) {
  auto pod = json::parse(R"({"metadata":{},"status":{"phase":"Running",
      "conditions":[{"type":"Ready","status":"True"}]}})");
  EXPECT_TRUE(pod_ready(pod));
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_FALSE(pod_ready(pod));
}

TEST(PodActive, FinishedFailedAndDeletingPodsDoNotCount) {
  auto pod = json::parse(R"({"metadata":{},"status":{"phase":"Running"}})");
  EXPECT_TRUE(pod_active(pod));
  pod["status"]["phase"] = "Pending";
  EXPECT_TRUE(pod_active(pod));
  for (const char* phase : {"Failed", "Succeeded"}) {
    pod["status"]["phase"] = phase;
    EXPECT_FALSE(pod_active(pod)) << phase;
  }
  pod["status"]["phase"] = "Running";
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_FALSE(pod_active(pod));
}

TEST(RolloutFailure, ReadsConditionsAndStuckContainersAsKubectlDoes) {
  auto d = json::parse(R"({"metadata":{"generation":2},"status":{"observedGeneration":2,
      "conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded",
                     "message":"ReplicaSet \"api-5d9\" has timed out progressing."}]}})");
  EXPECT_EQ(rollout_failure(d, json::array()),
            "ProgressDeadlineExceeded: ReplicaSet \"api-5d9\" has timed out progressing.");
  d["metadata"]["generation"] = 3;
  EXPECT_EQ(rollout_failure(d, json::array()), "") << "a condition of the previous generation";
  auto quota = json::parse(R"({"status":{"conditions":[{"type":"ReplicaFailure","status":"True",
      "reason":"FailedCreate","message":"pods \"api-x\" is forbidden: exceeded quota"}]}})");
  EXPECT_NE(rollout_failure(quota, json::array()).find("FailedCreate: pods"), std::string::npos);
  auto pull = json::parse(R"([{"metadata":{"name":"api-1"},"status":{"containerStatuses":[
      {"name":"app","state":{"waiting":{"reason":"ImagePullBackOff",
       "message":"Back-off pulling image \"lpk/lpk-agent:nope\""}}}]}}])");
  EXPECT_EQ(rollout_failure(json::object(), pull),
            "pod api-1 container app: ImagePullBackOff: Back-off pulling image "
            "\"lpk/lpk-agent:nope\"");
  auto starting = json::parse(R"([{"metadata":{"name":"api-1"},"status":{"containerStatuses":[
      {"name":"app","state":{"waiting":{"reason":"ContainerCreating"}}}]}}])");
  EXPECT_EQ(rollout_failure(json::object(), starting), "") << "still starting is not stuck";
  EXPECT_EQ(rollout_failure(json::parse("[1]"), json::parse(R"([{"status":7}])")), "");
}

TEST(DeclaredPorts, EveryContainerAndSidecarOfThePod) {
  auto spec = json::parse(R"({"containers":[{"ports":[{"containerPort":8080}]},
      {"ports":[{"containerPort":4590},{"containerPort":99999}]}],
      "initContainers":[{"restartPolicy":"Always","ports":[{"containerPort":9901}]}]})");
  EXPECT_EQ(declared_ports(spec), (std::set<std::uint16_t>{4590, 8080, 9901}));
  EXPECT_TRUE(declared_ports(json::parse("null")).empty());
}

}  // namespace
}  // namespace lpk::kube
