// The client against lpk-kubesim (started with --no-runtime: the API without pods, no root
// needed): every auth method, TLS settings, proxies, CRUD, watch resume and 410 relist.
// $LPK_KUBESIM names the binary (ctest sets it); without it these tests are skipped.
#include <gtest/gtest.h>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <fstream>
#include <thread>

#include "kube/client.hpp"
#include "kube/config.hpp"
#include "kube/text.hpp"
#include "tests/kube/fake_server.hpp"
#include "tests/kube/kubesim_process.hpp"
#include "tests/kube/test_util.hpp"
#include "tests/temp_dir.hpp"
#include "tests/slack.hpp"

namespace lpk::kube {
namespace {

using test::Kubesim;
using lpk::test::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class KubesimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* bin = std::getenv("LPK_KUBESIM");
    if (!bin || !*bin) return;
    try {
      sim_ = new Kubesim(bin);
    } catch (const std::exception& e) {
      start_error_ = new std::string(e.what());
    }
  }
  static void TearDownTestSuite() {
    if (sim_) {
      EXPECT_EQ(sim_->stop(), "");  // kubesim exits 0 on SIGTERM
    }
    delete sim_;
    sim_ = nullptr;
  }
  void SetUp() override {
    if (start_error_) FAIL() << *start_error_;
    if (!sim_) GTEST_SKIP() << "LPK_KUBESIM is not set (ctest sets it to the built lpk-kubesim)";
  }

  /// A kubeconfig with one context whose cluster and user are the given YAML bodies.
  std::string kubeconfig(const std::string& cluster_extra, const std::string& user_body,
                         const std::string& server = "") {
    std::string s = server.empty() ? "https://127.0.0.1:" + std::to_string(sim_->port) : server;
    return dir.write("kubeconfig",
                     "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: c\n"
                     "  cluster:\n    server: " + s + "\n" + cluster_extra +
                         "users:\n- name: u\n  user:\n" + user_body +
                         "contexts:\n- name: t\n  context: {cluster: c, user: u, namespace: default}\n");
  }
  std::string ca_line() { return "    certificate-authority: " + sim_->file("ca.crt") + "\n"; }
  std::string token() { return slurp(sim_->file("token")); }

  /// "" when listing namespaces works, else the error.
  std::string try_list(const std::string& kubeconfig_path, const std::string& context = "") {
    try {
      Client c(load_config({.kubeconfig = kubeconfig_path, .context = context}));
      auto l = c.list("/api/v1/namespaces");
      if (!l.contains("items")) return "no items";
      return "";
    } catch (const std::exception& e) {
      return e.what();
    }
  }

  static Kubesim* sim_;
  static std::string* start_error_;
  TempDir dir;
  test::ScopedEnv env = test::clean_env(dir / "home");
};
Kubesim* KubesimTest::sim_ = nullptr;
std::string* KubesimTest::start_error_ = nullptr;

TEST_F(KubesimTest, ItsOwnKubeconfigWithCertificateAndToken) {
  EXPECT_EQ(try_list(sim_->kubeconfig), "");
  EXPECT_EQ(try_list(sim_->kubeconfig, "kubesim-token"), "");
}

TEST_F(KubesimTest, TokenFileRelativeToTheKubeconfig) {
  dir.write("secrets/token", token() + "\n");
  EXPECT_EQ(try_list(kubeconfig(ca_line(), "    tokenFile: secrets/token\n")), "");
}

TEST_F(KubesimTest, ClientCertificateFiles) {
  EXPECT_EQ(try_list(kubeconfig(ca_line(), "    client-certificate: " + sim_->file("admin.crt") +
                                               "\n    client-key: " + sim_->file("admin.key") + "\n")),
            "");
}

TEST_F(KubesimTest, WrongTokenIsAClearOneLineError) {
  std::string err = try_list(kubeconfig(ca_line(), "    token: not-the-token\n"));
  EXPECT_NE(err.find("the API server rejected the credentials of context \"t\""), std::string::npos)
      << err;
  EXPECT_NE(err.find("401 Unauthorized"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

/// An exec plugin script: the first run prints a wrong token when asked to, later runs the right
/// one (or the admin certificate); every run is logged.
std::string exec_user(const TempDir& dir, const std::string& api_version, const std::string& status) {
  dir.write("plugin.sh",
            "#!/bin/sh\n"
            "echo run >> \"$LOG\"\n"
            "if [ -n \"$FIRST_WRONG\" ] && [ ! -e \"$LOG.2\" ]; then touch \"$LOG.2\";\n"
            "  printf '%s\\n' '{\"apiVersion\":\"" + api_version +
                "\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"stale\"}}'; exit 0; fi\n"
                "printf '%s\\n' '{\"apiVersion\":\"" + api_version + "\",\"kind\":\"ExecCredential\",\"status\":" +
                status + "}'\n",
            0755);
  return "    exec:\n      apiVersion: " + api_version +
         "\n      command: ./plugin.sh\n      interactiveMode: Never\n      env:\n"
         "      - {name: LOG, value: " + (dir / "runs") + "}\n";
}

int runs(const TempDir& dir) {
  std::string r = slurp(dir / "runs");
  return int(std::count(r.begin(), r.end(), '\n'));
}

class KubesimExec : public KubesimTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(KubesimExec, TokenRunsAgainOnceAfterA401) {
  ::setenv("FIRST_WRONG", "1", 1);
  std::string k = kubeconfig(ca_line(), exec_user(dir, GetParam(), "{\"token\":\"" + token() + "\"}"));
  std::string err = try_list(k);
  ::unsetenv("FIRST_WRONG");
  EXPECT_EQ(err, "");
  EXPECT_EQ(runs(dir), 2);  // the stale token got a 401, the plugin ran again, the call passed
}

TEST_P(KubesimExec, ClientCertificate) {
  nlohmann::json status{{"clientCertificateData", slurp(sim_->file("admin.crt"))},
                        {"clientKeyData", slurp(sim_->file("admin.key"))}};
  std::string k = kubeconfig(ca_line(), exec_user(dir, GetParam(), status.dump()));
  EXPECT_EQ(try_list(k), "");
  EXPECT_EQ(runs(dir), 1);
}

INSTANTIATE_TEST_SUITE_P(Versions, KubesimExec,
                         ::testing::Values("client.authentication.k8s.io/v1",
                                           "client.authentication.k8s.io/v1beta1"),
                         [](const auto& info) {
                           return info.param.substr(info.param.rfind('/') + 1);
                         });

TEST_F(KubesimTest, TlsSettings) {
  std::string user = "    token: " + token() + "\n";
  // CA data, and tls-server-name: the certificate names "kubernetes", not this address's name.
  std::string ca_data = "    certificate-authority-data: " +
                        text::base64_encode(slurp(sim_->file("ca.crt"))) + "\n";
  EXPECT_EQ(try_list(kubeconfig(ca_data + "    tls-server-name: kubernetes\n", user)), "");
  std::string err = try_list(kubeconfig(ca_data + "    tls-server-name: not-in-the-cert.example\n", user));
  EXPECT_NE(err.find("cannot reach the API server"), std::string::npos) << err;
  // No CA: the system roots do not know kubesim's CA; insecure-skip-tls-verify gets through.
  err = try_list(kubeconfig("", user));
  EXPECT_NE(err.find("certificate"), std::string::npos) << err;
  EXPECT_EQ(try_list(kubeconfig("    insecure-skip-tls-verify: true\n", user)), "");
}

TEST_F(KubesimTest, ProxyUrlAndHttpsProxyGoThroughConnect) {
  test::ConnectProxy proxy;
  std::string user = "    token: " + token() + "\n";
  std::string port = std::to_string(sim_->port);
  std::string via = "    proxy-url: http://127.0.0.1:" + std::to_string(proxy.port()) + "\n";
  EXPECT_EQ(try_list(kubeconfig(ca_line() + via, user)), "");
  ASSERT_EQ(proxy.targets(), std::vector<std::string>{"CONNECT 127.0.0.1:" + port});
  // From the environment: a name the proxy resolves (loopback itself is never proxied).
  env.set("HTTPS_PROXY", "127.0.0.1:" + std::to_string(proxy.port()));
  EXPECT_EQ(try_list(kubeconfig(ca_line(), user, "https://kubernetes:" + port)), "");
  EXPECT_EQ(proxy.targets().back(), "CONNECT kubernetes:" + port);
  env.set("NO_PROXY", "kubernetes");
  EXPECT_EQ(proxy_for(load_config({.kubeconfig = kubeconfig(ca_line(), user,
                                                            "https://kubernetes:" + port)})
                          .cluster),
            "");  // not tried: nothing here may resolve "kubernetes" without the proxy
  EXPECT_EQ(proxy.targets().size(), 2u);
}

TEST_F(KubesimTest, CreateGetListPatchReplaceDelete) {
  Client c(load_config({.kubeconfig = sim_->kubeconfig}));
  const std::string ns = "default";
  const std::string coll = resource_path("v1", ns, "configmaps");
  const std::string one = resource_path("v1", ns, "configmaps", "kube-client-crud");
  c.create(coll, {{"metadata", {{"name", "kube-client-crud"}, {"labels", {{"suite", "crud"}}}}},
                  {"data", {{"a", "1"}}}});
  try {
    c.create(coll, {{"metadata", {{"name", "kube-client-crud"}}}});
    ADD_FAILURE() << "created twice";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, 409);
    EXPECT_EQ(e.reason, "AlreadyExists");
  }
  EXPECT_EQ(c.get(one)["data"]["a"], "1");
  auto l = c.list(coll, {.label_selector = "suite=crud"});
  ASSERT_EQ(l["items"].size(), 1u);
  c.patch(one, {{"data", {{"b", "2"}}}});
  c.patch(one, {{"data", {{"a", nullptr}}}}, PatchType::merge);
  c.patch(one, nlohmann::json::array({{{"op", "add"}, {"path", "/data/c"}, {"value", "3"}}}),
          PatchType::json);
  auto got = c.get(one);
  EXPECT_EQ(got["data"], (nlohmann::json{{"b", "2"}, {"c", "3"}}));
  got["data"] = {{"d", "4"}};
  EXPECT_EQ(c.replace(one, got)["data"], (nlohmann::json{{"d", "4"}}));
  c.remove(one);
  try {
    c.get(one);
    ADD_FAILURE() << "still there";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, 404);
    EXPECT_NE(std::string(e.what()).find("not found: configmaps \"kube-client-crud\" in namespace default"),
              std::string::npos)
        << e.what();
  }
}

/// Counts the watch requests a Client starts (its debug line "kube: watch <target>") while it
/// is installed on the default logger, without printing the other debug lines.
class WatchStarts : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static std::shared_ptr<WatchStarts> install() {
    auto sink = std::make_shared<WatchStarts>();
    auto logger = spdlog::default_logger();
    sink->old_level_ = logger->level();
    for (auto& s : logger->sinks()) s->set_level(sink->old_level_);
    logger->sinks().push_back(sink);
    logger->set_level(spdlog::level::debug);
    return sink;
  }
  void uninstall() {
    auto logger = spdlog::default_logger();
    logger->sinks().pop_back();
    logger->set_level(old_level_);
  }
  int count() {
    std::lock_guard lock(m_);
    return started_;
  }
  /// Waits until `n` watches have started; false at the bound.
  bool wait_for(int n, std::chrono::seconds bound) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, bound, [&] { return started_ >= n; });
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (std::string_view(msg.payload.data(), msg.payload.size()).starts_with("kube: watch /")) {
      std::lock_guard lock(m_);
      ++started_;
      cv_.notify_all();
    }
  }
  void flush_() override {}

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int started_ = 0;
  spdlog::level::level_enum old_level_ = spdlog::level::info;
};

TEST_F(KubesimTest, WatchSeesEventsAcrossServerTimeoutsAndRelistsAfterGone) {
  auto watches = WatchStarts::install();
  struct Uninstall {
    std::shared_ptr<WatchStarts> sink;
    ~Uninstall() { sink->uninstall(); }
  } uninstall{watches};
  if (std::getenv("LPK_KUBE_DEBUG")) {
    for (auto& s : spdlog::default_logger()->sinks()) s->set_level(spdlog::level::debug);
  }
  Client c(load_config({.kubeconfig = sim_->kubeconfig}));
  const std::string coll = resource_path("v1", "default", "configmaps");
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> events;
  int relists = 0;
  // (The jthread's own stop token: a failed ASSERT below stops the watch as it unwinds.)
  std::jthread t([&](std::stop_token stop) {
    c.watch(coll, {.label_selector = "suite=watch", .timeout_seconds = 1, .allow_bookmarks = false},
            [&](const nlohmann::json&) {
              std::lock_guard lock(m);
              ++relists;
              cv.notify_all();
            },
            [&](const WatchEvent& e) {
              std::lock_guard lock(m);
              events.push_back(e.type + " " + e.object["metadata"]["name"].get<std::string>());
              cv.notify_all();
            },
            stop);
  });
  auto wait_until = [&](auto pred) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, slack(std::chrono::seconds(30)), pred);
  };
  ASSERT_TRUE(wait_until([&] { return relists == 1; }));
  auto make = [&](const std::string& name) {
    c.create(coll, {{"metadata", {{"name", name}, {"labels", {{"suite", "watch"}}}}}});
  };
  make("w1");
  ASSERT_TRUE(wait_until([&] { return events.size() == 1; }));
  // The server ends each watch after 1 s: wait until the client has watched again twice.
  ASSERT_TRUE(watches->wait_for(watches->count() + 2, slack(std::chrono::seconds(30))))
      << "the client did not resume its watch after the server's timeouts";
  c.patch(resource_path("v1", "default", "configmaps", "w1"), {{"data", {{"k", "v"}}}});
  ASSERT_TRUE(wait_until([&] { return events.size() == 2; }));
  // 60 changes outside the selector push the watch's version out of kubesim's 50-event
  // history; the next re-watch gets 410 and the client lists again.
  c.create(coll, {{"metadata", {{"name", "other"}}}});
  for (int i = 0; i < 60; ++i)
    c.patch(resource_path("v1", "default", "configmaps", "other"),
            {{"data", {{"n", std::to_string(i)}}}});
  ASSERT_TRUE(wait_until([&] { return relists >= 2; })) << "no relist after 410";
  make("w2");
  ASSERT_TRUE(wait_until([&] { return events.size() == 3; }));
  c.remove(resource_path("v1", "default", "configmaps", "w1"));
  ASSERT_TRUE(wait_until([&] { return events.size() == 4; }));
  auto asked = std::chrono::steady_clock::now();
  t.request_stop();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, slack(std::chrono::milliseconds(2000)));
  EXPECT_EQ(events, (std::vector<std::string>{"ADDED w1", "MODIFIED w1", "ADDED w2", "DELETED w1"}));
  for (const char* n : {"w2", "other"}) c.remove(resource_path("v1", "default", "configmaps", n));
}

}  // namespace
}  // namespace lpk::kube
