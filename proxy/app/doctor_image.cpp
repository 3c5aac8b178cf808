// `doctor`'s agent-image check: the only honest answer to "can the cluster pull this image" is
// the cluster's, so it starts a pod of the image and reads what its node says, as a user would
// with `kubectl run`. The pod runs the image's entrypoint with --help, is never restarted, and is
// deleted before doctor goes on.

#include <chrono>
#include <thread>

#include "proxy/app/doctor_checks.hpp"
#include "proxy/tunnel/handshake.hpp"

namespace lpk::proxy {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr auto kImageCheckLimit = 60s;

json image_probe_pod(const std::string& name, const std::string& image) {
  json container = {{"name", "agent"}, {"image", image}, {"args", {"--help"}}};
  json spec = {{"restartPolicy", "Never"},
               {"activeDeadlineSeconds", 120},  // the cluster ends it even if doctor is killed
               {"terminationGracePeriodSeconds", 0},
               {"automountServiceAccountToken", false},
               {"containers", {container}}};
  json labels = {{"app.kubernetes.io/managed-by", "lpk"}, {"lpk.dev/doctor", "image-check"}};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"spec", spec}};
}

/// What the pod's container says of the image: "pulled", a waiting reason that means it cannot
/// be pulled (with the node's message), or "" while it is still being decided.
std::pair<std::string, std::string> image_verdict(const json& pod) {
  for (const auto& c : pod.value("status", json::object()).value("containerStatuses", json::array())) {
    const auto& state = c.value("state", json::object());
    if (state.contains("running") || state.contains("terminated")) return {"pulled", ""};
    auto waiting = state.value("waiting", json::object());
    auto reason = waiting.value("reason", "");
    if (reason == "ErrImagePull" || reason == "ImagePullBackOff" ||
        reason == "InvalidImageName" || reason == "ErrImageNeverPull") {
      return {reason, waiting.value("message", "")};
    }
  }
  return {"", ""};
}

std::pair<std::string, std::string> await_image_verdict(kube::Client& client,
                                                        const std::string& path) {
  auto deadline = std::chrono::steady_clock::now() + kImageCheckLimit;
  while (std::chrono::steady_clock::now() < deadline) {
    auto verdict = image_verdict(client.get(path));
    if (!verdict.first.empty()) return verdict;
    std::this_thread::sleep_for(250ms);
  }
  return {"", ""};
}

}  // namespace

DoctorCheck check_agent_image(kube::Client& client, const DoctorOptions& options,
                              const std::string& ns) {
  const std::string name = "lpk-doctor-image-" + tunnel::to_hex(tunnel::random_session_id()).substr(0, 6);
  const std::string path = "/api/v1/namespaces/" + ns + "/pods/" + name;
  try {
    client.create("/api/v1/namespaces/" + ns + "/pods", image_probe_pod(name, options.agent_image));
  } catch (const kube::ApiError& e) {
    // connect itself never creates pods: a user without that right may still connect.
    return {"agent image", true,
            options.agent_image + " not tried: creating a pod to pull it was refused (" + e.what() +
                ")",
            ""};
  }
  std::pair<std::string, std::string> verdict;
  try {
    verdict = await_image_verdict(client, path);
  } catch (const kube::ApiError& e) {
    verdict = {"", e.what()};
  }
  try {
    client.remove(path);
  } catch (const kube::ApiError&) {
    // Gone already, or not ours to delete now; activeDeadlineSeconds ends it anyway.
  }
  const auto& [reason, message] = verdict;
  if (reason == "pulled") {
    return {"agent image", true, options.agent_image + " is pulled and starts in namespace " + ns,
            ""};
  }
  std::string fix = "push it where the cluster's nodes pull from (README \"The agent image\") "
                    "and give it with --agent-image";
  if (reason.empty()) {
    return {"agent image", false,
            options.agent_image + ": no node started a pod of it within " +
                std::to_string(kImageCheckLimit.count()) + " s" +
                (message.empty() ? "" : " (" + message + ")"),
            "see `kubectl get events -n " + ns + "`; " + fix};
  }
  return {"agent image", false,
          options.agent_image + " cannot be pulled: " + reason +
              (message.empty() ? "" : ": " + message),
          fix};
}

}  // namespace lpk::proxy
