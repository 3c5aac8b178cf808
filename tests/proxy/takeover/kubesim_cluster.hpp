#pragma once
// A fixture for tests that need a cluster: one lpk-kubesim --no-runtime per test suite (pods
// become Running and Ready without processes; no root needed), a namespace of its own for every
// test, builders for the objects a service can stand on, and a view of the namespace's pods
// (an informer) to wait on instead of sleeping. $LPK_KUBESIM names the binary (ctest sets it);
// without it the tests are skipped with that reason.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kube/client.hpp"
#include "kube/config.hpp"
#include "kube/informer.hpp"
#include "kube/objects.hpp"
#include "tests/kube/kubesim_process.hpp"
#include "tests/kube/test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::proxy::test {

using kube::test::ScopedEnv;
using lpk::test::TempDir;
using nlohmann::json;

/// The pods of one namespace as an informer sees them; waits are woken by its events.
class PodView {
 public:
  PodView(kube::Client& client, const std::string& ns) {
    kube::Informer::Handlers h;
    h.on_list = [this](const json& items) {
      std::lock_guard lock(mutex_);
      pods_.clear();
      for (const auto& p : items) pods_[p["metadata"].value("name", "")] = p;
      changed_.notify_all();
    };
    h.on_event = [this](const kube::WatchEvent& e) {
      std::lock_guard lock(mutex_);
      auto name = e.object["metadata"].value("name", "");
      if (e.type == "DELETED") {
        pods_.erase(name);
      } else {
        pods_[name] = e.object;
      }
      changed_.notify_all();
    };
    informer_ = std::make_unique<kube::Informer>(client, kube::resource_path("v1", ns, "pods"),
                                                 kube::ListOptions{}, std::move(h));
  }

  /// Waits until `done` holds for the pods carrying label `key=value` (all pods: empty key).
  bool wait(const std::string& key, const std::string& value,
            const std::function<bool(const std::vector<json>&)>& done,
            std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] {
      std::vector<json> selected;
      for (const auto& [name, pod] : pods_) {
        const auto labels = pod["metadata"].value("labels", json::object());
        if (key.empty() || labels.value(key, "") == value) selected.push_back(pod);
      }
      return done(selected);
    });
  }

  /// Waits for exactly `count` pods labelled app=`app`, all ready, none terminating, every one
  /// running `image` in container `container` (any image: empty).
  bool wait_ready(const std::string& app, std::size_t count, const std::string& container = {},
                  const std::string& image = {}) {
    return wait("app", app, [&](const std::vector<json>& pods) {
      if (pods.size() != count) return false;
      return std::all_of(pods.begin(), pods.end(), [&](const json& pod) {
        if (pod["metadata"].contains("deletionTimestamp") || !kube::pod_ready(pod)) return false;
        if (container.empty()) return true;
        for (const auto& c : pod["spec"]["containers"]) {
          if (c.value("name", "") == container) return c.value("image", "") == image;
        }
        return false;
      });
    });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, json> pods_;
  std::unique_ptr<kube::Informer> informer_;  // last: stopped before the map goes
};

class KubesimCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* bin = std::getenv("LPK_KUBESIM");
    if (!bin || !*bin) return;
    try {
      sim_ = std::make_unique<kube::test::Kubesim>(bin);
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    if (!sim_) return;
    if (auto problem = sim_->stop(); !problem.empty()) ADD_FAILURE() << problem;
    sim_.reset();
  }

  void SetUp() override {
    if (!start_error_.empty()) FAIL() << start_error_;
    if (!sim_) GTEST_SKIP() << "LPK_KUBESIM is not set (ctest sets it to the built lpk-kubesim)";
    client_ = std::make_unique<kube::Client>(kube::load_config({.kubeconfig = sim_->kubeconfig}));
    ns_ = namespace_for_this_test();
    client_->create("/api/v1/namespaces",
                    {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}});
    pods_ = std::make_unique<PodView>(*client_, ns_);
  }
  void TearDown() override { pods_.reset(); }

  /// "t-" and the test's name in lower case, '-' for anything else: DNS-1123, unique.
  static std::string namespace_for_this_test() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("t-") + info->test_suite_name() + "-" + info->name();
    for (auto& c : name) {
      c = std::isalnum(static_cast<unsigned char>(c)) ? char(std::tolower(c)) : '-';
    }
    name = name.substr(0, 60);
    while (name.back() == '-') name.pop_back();
    return name;
  }

  // Objects. Containers: `app` serves port 8080 (named http) and mounts /etc/app; `sidecar`
  // declares no port.
  static json pod_template(const std::string& app, std::uint16_t port = 8080) {
    return {{"metadata", {{"labels", {{"app", app}}}}},
            {"spec",
             {{"containers",
               {{{"name", "app"},
                 {"image", "demo/" + app + ":1"},
                 {"env", {{{"name", "GREETING"}, {"value", "hello"}}}},
                 {"ports", {{{"containerPort", port}, {"name", "http"}}}},
                 {"readinessProbe", {{"tcpSocket", {{"port", "http"}}}}},
                 {"volumeMounts", {{{"name", "config"}, {"mountPath", "/etc/app"}}}}},
                {{"name", "sidecar"}, {"image", "demo/sidecar:1"}}}},
              {"volumes", {{{"name", "config"}, {"emptyDir", json::object()}}}}}}};
  }
  json workload(const std::string& kind, const std::string& name, int replicas,
                std::uint16_t port = 8080) const {
    json w = {
        {"apiVersion", "apps/v1"},
        {"kind", kind},
        {"metadata", {{"name", name}, {"namespace", ns_}, {"annotations", {{"team", "core"}}}}},
        {"spec",
         {{"replicas", replicas},
          {"selector", {{"matchLabels", {{"app", name}}}}},
          {"template", pod_template(name, port)}}}};
    if (kind == "StatefulSet") w["spec"]["serviceName"] = name;
    return w;
  }
  json bare_pod(const std::string& name) const {
    auto t = pod_template(name);
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"namespace", ns_}, {"labels", t["metadata"]["labels"]}}},
            {"spec", t["spec"]}};
  }
  /// `port` to the named target port `http` (selector app=`app`; none: no selector).
  json service(const std::string& name, const std::string& app, std::uint16_t port = 80) const {
    json s = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata", {{"name", name}, {"namespace", ns_}}},
        {"spec",
         {{"ports",
           {{{"name", "web"}, {"port", port}, {"targetPort", "http"}, {"protocol", "TCP"}}}}}}};
    if (!app.empty()) s["spec"]["selector"] = {{"app", app}};
    return s;
  }

  /// Creates `object` in the test's namespace (its kind picks the collection).
  json create(const json& object) {
    auto kind = kube::workload_kind(object.value("kind", ""));
    std::string path =
        kind ? kube::resource_path(kube::group_version_of(*kind), ns_, kube::resource_of(*kind))
             : kube::resource_path("v1", ns_, "services");
    return client_->create(path, object);
  }

  /// A workload of `kind` named `name` with `replicas` ready pods and a service `name` for it.
  void deploy(const std::string& kind, const std::string& name, int replicas,
              std::uint16_t port = 8080, std::uint16_t service_port = 80) {
    create(kind == "Pod" ? bare_pod(name) : workload(kind, name, replicas, port));
    create(service(name, name, service_port));
    ASSERT_TRUE(pods_->wait_ready(name, std::size_t(replicas)))
        << kind << " " << name << " did not get " << replicas << " ready pods";
  }

  inline static std::unique_ptr<kube::test::Kubesim> sim_;
  inline static std::string start_error_;
  TempDir dir_;
  ScopedEnv env_ = kube::test::clean_env(dir_ / "home");
  std::unique_ptr<kube::Client> client_;
  std::string ns_;
  std::unique_ptr<PodView> pods_;
};

}  // namespace lpk::proxy::test
