// StatefulSet controller: pods <name>-0..n-1 with hostname and subdomain, created in order
// (each once the previous is ready, for OrderedReady) and replaced from the highest ordinal
// when the template changes.

#include "tools/kubesim/controllers/common.hpp"
#include "tools/kubesim/controllers/controllers.hpp"

namespace lpk::kubesim {

namespace {

json make_pod(const json& sts, int ordinal, const std::string& revision) {
  std::string name = sts["metadata"]["name"].get<std::string>() + "-" + std::to_string(ordinal);
  json pod = pod_from_template(sts, sts["spec"]["template"], name, sts["metadata"]["namespace"]);
  auto& labels = pod["metadata"]["labels"];
  labels["statefulset.kubernetes.io/pod-name"] = name;
  labels["controller-revision-hash"] = revision;
  labels["apps.kubernetes.io/pod-index"] = std::to_string(ordinal);
  pod["spec"]["hostname"] = name;
  if (sts["spec"].contains("serviceName")) pod["spec"]["subdomain"] = sts["spec"]["serviceName"];
  return pod;
}

std::string revision_of(const json& pod) {
  return pod["metadata"].value("labels", json::object()).value("controller-revision-hash", "");
}

void reconcile_one(Rest& rest, const json& sts) {
  const auto& pods_t = resource_by_plural("pods");
  std::string ns = sts["metadata"]["namespace"];
  std::string name = sts["metadata"]["name"];
  std::string revision = name + "-" + template_hash(sts["spec"]["template"]);
  int want = sts["spec"].value("replicas", 1);
  bool ordered = sts["spec"].value("podManagementPolicy", "OrderedReady") == "OrderedReady";
  int ready = 0, current = 0, count = 0;
  bool blocked = false;
  for (int i = 0; i < want; ++i) {
    auto pod = rest.store().get("pods", ns, name + "-" + std::to_string(i));
    if (!pod) {
      if (blocked) break;
      rest.create_object(pods_t, make_pod(sts, i, revision));
      ++count;
      if (ordered) blocked = true;
      continue;
    }
    ++count;
    if (pod_ready(*pod))
      ++ready;
    else if (ordered)
      blocked = true;
    if (revision_of(*pod) == revision) ++current;
  }
  // Scale down from the highest ordinal; roll outdated pods from the highest ordinal, one at
  // a time once every pod is ready.
  for (const auto& p : owned(rest, "pods", sts)) {
    std::string idx = p["metadata"]["labels"].value("apps.kubernetes.io/pod-index", "0");
    if (std::atoi(idx.c_str()) >= want && !terminating(p)) {
      rest.remove({&pods_t, ns, p["metadata"]["name"], ""}, false);
    }
  }
  if (ready == want && current < want) {
    for (int i = want - 1; i >= 0; --i) {
      auto pod = rest.store().get("pods", ns, name + "-" + std::to_string(i));
      if (pod && revision_of(*pod) != revision && !terminating(*pod)) {
        rest.remove({&pods_t, ns, (*pod)["metadata"]["name"], ""}, false);
        break;
      }
    }
  }
  json st = {{"observedGeneration", sts["metadata"]["generation"]},
             {"replicas", count},
             {"readyReplicas", ready},
             {"availableReplicas", ready},
             {"currentReplicas", current},
             {"updatedReplicas", current},
             {"currentRevision", revision},
             {"updateRevision", revision},
             {"collisionCount", 0}};
  if (sts.value("status", json::object()) == st) return;
  json copy = sts;
  copy["status"] = st;
  copy["metadata"].erase("resourceVersion");
  rest.update_object(resource_by_plural("statefulsets"), copy, true);
}

}  // namespace

void reconcile_statefulsets(Rest& rest) {
  for (const auto& s : rest.store().list("statefulsets")) {
    if (!terminating(s)) reconcile_one(rest, s);
  }
}

}  // namespace lpk::kubesim
