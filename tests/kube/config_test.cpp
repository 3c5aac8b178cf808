#include "kube/config.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "kube/text.hpp"
#include "kube/detail/kubeconfig.hpp"
#include "kube/detail/server_url.hpp"
#include "tests/kube/test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::kube {
namespace {

using test::ScopedEnv;
using lpk::test::TempDir;

std::string cluster(const std::string& name, const std::string& body) {
  return "- name: " + name + "\n  cluster:\n" + body;
}
std::string user(const std::string& name, const std::string& body) {
  return "- name: " + name + "\n  user:\n" + body;
}
std::string context(const std::string& name, const std::string& c, const std::string& u,
                    const std::string& ns = "") {
  return "- name: " + name + "\n  context: {cluster: " + c + ", user: " + u +
         (ns.empty() ? "" : ", namespace: " + ns) + "}\n";
}

/// What load_config throws, or "" when it does not.
std::string load_error(const LoadOptions& o) {
  try {
    load_config(o);
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "not one line: " << e.what();
    return e.what();
  }
  return "";
}

class LoadConfig : public ::testing::Test {
 protected:
  TempDir dir;
  ScopedEnv env = test::clean_env(dir / "home");
};

TEST_F(LoadConfig, ExplicitKubeconfigMustExist) {
  std::string err = load_error({.kubeconfig = dir / "missing.yaml"});
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  EXPECT_NE(err.find("missing.yaml"), std::string::npos) << err;
}

TEST_F(LoadConfig, KubeconfigListFirstFileWinsEachEntryAndCurrentContext) {
  std::string a = dir.write("a.yaml", "clusters:\n" + cluster("c1", "    server: https://a.example:1\n") +
                                          "users:\n" + user("u1", "    token: token-a\n") +
                                          "contexts:\n" + context("ctx-a", "c1", "u1", "ns-a"));
  std::string b = dir.write(
      "b.yaml", "current-context: ctx-b\nclusters:\n" +
                    cluster("c1", "    server: https://b.example:2\n    insecure-skip-tls-verify: true\n") +
                    cluster("c2", "    server: https://b.example:3\n") + "users:\n" +
                    user("u1", "    token: token-b\n") + "contexts:\n" + context("ctx-b", "c1", "u1") +
                    context("ctx-a", "c2", "u1", "ns-b"));
  std::string c = dir.write("c.yaml", "current-context: ctx-a\n");
  env.set("KUBECONFIG", a + ":" + dir / "missing.yaml" + "::" + b + ":" + a + ":" + c);
  RestConfig rc = load_config({});
  EXPECT_EQ(rc.context_name, "ctx-b");  // the first file that sets current-context
  EXPECT_EQ(rc.cluster.server, "https://a.example:1");  // c1 from a.yaml, whole entry
  EXPECT_FALSE(rc.cluster.insecure_skip_tls_verify);   // fields are not merged from b.yaml
  EXPECT_EQ(rc.user.token, "token-a");
  EXPECT_EQ(rc.namespace_, "default");
  EXPECT_EQ(rc.source, a + ":" + b + ":" + c);  // missing skipped, duplicate dropped
  RestConfig ra = load_config({.context = "ctx-a"});
  EXPECT_EQ(ra.namespace_, "ns-a");  // ctx-a from a.yaml, not b.yaml's
}

TEST_F(LoadConfig, DefaultFileIsHomeKubeConfig) {
  dir.write("home/.kube/config", "current-context: x\nclusters:\n" +
                                     cluster("c", "    server: https://h.example\n") +
                                     "contexts:\n" + context("x", "c", "nobody", "team"));
  RestConfig rc = load_config({});
  EXPECT_EQ(rc.cluster.server, "https://h.example:443");
  EXPECT_EQ(rc.namespace_, "team");
  EXPECT_EQ(load_config({.namespace_override = "other"}).namespace_, "other");
}

TEST_F(LoadConfig, UnparsableFileIsAnErrorNamingIt) {
  std::string bad = dir.write("bad.yaml", "clusters: [\n  - {name: x\n");
  env.set("KUBECONFIG", bad);
  std::string err = load_error({});
  EXPECT_NE(err.find("bad.yaml"), std::string::npos) << err;
  dir.write("dup.yaml", "clusters:\n" + cluster("c", "    server: https://x\n") +
                            cluster("c", "    server: https://y\n"));
  err = load_error({.kubeconfig = dir / "dup.yaml"});
  EXPECT_NE(err.find("duplicate name \"c\""), std::string::npos) << err;
  dir.write("type.yaml", "clusters:\n" + cluster("c", "    insecure-skip-tls-verify: maybe\n"));
  err = load_error({.kubeconfig = dir / "type.yaml"});
  EXPECT_NE(err.find("insecure-skip-tls-verify must be true or false"), std::string::npos) << err;
}

TEST_F(LoadConfig, RelativePathsResolveAgainstTheDefiningFile) {
  dir.write("one/certs/ca.pem", "CA-ONE");
  dir.write("one/certs/client.crt", "CERT-ONE");
  dir.write("one/certs/client.key", "KEY-ONE");
  dir.write("two/token", "token-from-file\n");
  std::string one = dir.write(
      "one/config", "current-context: ctx\nclusters:\n" +
                        cluster("c", "    server: https://one.example:6443/prefix/\n"
                                     "    certificate-authority: certs/ca.pem\n") +
                        "users:\n" +
                        user("u", "    client-certificate: certs/client.crt\n"
                                  "    client-key: ./certs/../certs/client.key\n") +
                        "contexts:\n" + context("ctx", "c", "u") + context("ctx2", "c", "u2"));
  std::string two = dir.write(
      "two/config", "users:\n" + user("u2", "    tokenFile: token\n") +
                        user("u3", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                   "      command: bin/plugin\n      interactiveMode: Never\n") +
                        user("u4", "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                   "      command: plugin-on-path\n") +
                        "contexts:\n" + context("ctx3", "c", "u3") + context("ctx4", "c", "u4"));
  env.set("KUBECONFIG", one + ":" + two);
  RestConfig rc = load_config({});
  EXPECT_EQ(rc.cluster.server, "https://one.example:6443/prefix");
  EXPECT_EQ(rc.cluster.ca_pem, "CA-ONE");
  EXPECT_EQ(rc.user.client_cert_pem, "CERT-ONE");
  EXPECT_EQ(rc.user.client_key_pem, "KEY-ONE");
  RestConfig r2 = load_config({.context = "ctx2"});
  EXPECT_EQ(r2.user.token_file, dir / "two/token");
  EXPECT_EQ(r2.user.token, "token-from-file");
  EXPECT_EQ(r2.cluster.ca_pem, "CA-ONE");  // the cluster still comes from one/config
  RestConfig r3 = load_config({.context = "ctx3"});
  ASSERT_TRUE(r3.user.exec);
  EXPECT_EQ(r3.user.exec->command, dir / "two/bin/plugin");
  EXPECT_EQ(r3.user.exec->interactive_mode, "Never");
  RestConfig r4 = load_config({.context = "ctx4"});
  EXPECT_EQ(r4.user.exec->command, "plugin-on-path");   // PATH lookups stay as they are
  EXPECT_EQ(r4.user.exec->interactive_mode, "IfAvailable");  // v1beta1 default
}

TEST_F(LoadConfig, DataFieldsAreBase64) {
  std::string k = dir.write(
      "k", "current-context: x\nclusters:\n" +
               cluster("c", "    server: https://10.0.0.1:6443\n    certificate-authority-data: " +
                                text::base64_encode("CA\nDATA") + "\n") +
               "users:\n" +
               user("u", "    client-certificate-data: " + text::base64_encode("CERT") +
                             "\n    client-key-data: " + text::base64_encode("KEY!") + "\n") +
               "contexts:\n" + context("x", "c", "u"));
  RestConfig rc = load_config({.kubeconfig = k});
  EXPECT_EQ(rc.cluster.ca_pem, "CA\nDATA");
  EXPECT_EQ(rc.user.client_cert_pem, "CERT");
  EXPECT_EQ(rc.user.client_key_pem, "KEY!");
  dir.write("bad64", "clusters:\n" + cluster("c", "    certificate-authority-data: '@@@'\n"));
  std::string err = load_error({.kubeconfig = dir / "bad64"});
  EXPECT_NE(err.find("certificate-authority-data is not valid base64"), std::string::npos) << err;
}

struct InvalidCase {
  const char* name;
  std::string cluster_body, user_body, expect;
};

TEST_F(LoadConfig, ValidationErrorsAreOneLine) {
  dir.write("ca.pem", "CA");
  std::string ok_cluster = "    server: https://x.example\n";
  std::vector<InvalidCase> cases = {
      {"ca file and data", ok_cluster + "    certificate-authority: ca.pem\n"
                                        "    certificate-authority-data: Q0E=\n",
       "    token: t\n", "certificate-authority-data and certificate-authority are both specified"},
      {"insecure and ca", ok_cluster + "    certificate-authority: ca.pem\n"
                                       "    insecure-skip-tls-verify: true\n",
       "    token: t\n", "insecure-skip-tls-verify together with a certificate authority"},
      {"token and basic", ok_cluster, "    token: t\n    username: a\n    password: b\n",
       "more than one authentication method"},
      {"cert without key", ok_cluster, "    client-certificate-data: Q0E=\n",
       "client-key-data or client-key must be specified"},
      {"cert file and data", ok_cluster,
       "    client-certificate: ca.pem\n    client-certificate-data: Q0E=\n    client-key: ca.pem\n",
       "client-certificate-data and client-certificate are both specified"},
      {"missing ca file", ok_cluster + "    certificate-authority: nope.pem\n", "",
       "unable to read certificate-authority"},
      {"no server", "    insecure-skip-tls-verify: true\n", "", "no server found for cluster \"c\""},
      {"v1 exec without interactiveMode", ok_cluster,
       "    exec: {apiVersion: client.authentication.k8s.io/v1, command: p}\n",
       "interactiveMode must be specified"},
      {"exec with a bad interactiveMode", ok_cluster,
       "    exec: {apiVersion: client.authentication.k8s.io/v1, command: p, interactiveMode: Sometimes}\n",
       "invalid exec.interactiveMode"},
      {"exec and auth-provider", ok_cluster,
       "    exec: {apiVersion: client.authentication.k8s.io/v1, command: p, interactiveMode: Never}\n"
       "    auth-provider: {name: oidc}\n",
       "authProvider cannot be provided in combination with an exec plugin"},
      {"groups without as", ok_cluster, "    as-groups: [admins]\n",
       "without impersonating a user"},
      {"bad proxy-url", ok_cluster + "    proxy-url: ftp://p:21\n", "", "invalid proxy-url"},
  };
  for (const auto& c : cases) {
    std::string k = dir.write("k.yaml", "current-context: x\nclusters:\n" + cluster("c", c.cluster_body) +
                                            "users:\n" + user("u", c.user_body.empty() ? "    {}\n" : c.user_body) +
                                            "contexts:\n" + context("x", "c", "u"));
    std::string err = load_error({.kubeconfig = k});
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
    EXPECT_NE(err.find(k), std::string::npos) << c.name << ": the file is named: " << err;
  }
}

TEST_F(LoadConfig, ContextChoice) {
  std::string k = dir.write(
      "k", "current-context: gone\nclusters:\n" + cluster("c", "    server: https://x.example\n") +
               "contexts:\n" + context("a", "c", "u", "na") + context("b", "missing-cluster", "u"));
  EXPECT_NE(load_error({.kubeconfig = k}).find("context was not found for specified context: gone"),
            std::string::npos);
  EXPECT_NE(load_error({.kubeconfig = k, .context = "zzz"}).find("context \"zzz\" does not exist"),
            std::string::npos);
  EXPECT_EQ(load_config({.kubeconfig = k, .context = "a"}).namespace_, "na");
  // A context whose cluster is missing is an empty configuration (no in-cluster here).
  EXPECT_NE(load_error({.kubeconfig = k, .context = "b"}).find("no cluster configured"),
            std::string::npos);
  // No kubeconfig at all.
  EXPECT_NE(load_error({}).find("no cluster configured"), std::string::npos);
}

TEST_F(LoadConfig, InClusterFallback) {
  dir.write("sa/token", "sa-token\n");
  dir.write("sa/ca.crt", "SA-CA");
  dir.write("sa/namespace", "pod-ns\n");
  env.set("LPK_SERVICEACCOUNT_DIR", dir / "sa");
  env.set("KUBERNETES_SERVICE_HOST", "fd00::1");
  EXPECT_NE(load_error({}).find("no cluster configured"), std::string::npos);  // port missing
  env.set("KUBERNETES_SERVICE_PORT", "443");
  RestConfig rc = load_config({});
  EXPECT_EQ(rc.cluster.server, "https://[fd00::1]:443");
  EXPECT_EQ(rc.cluster.ca_pem, "SA-CA");
  EXPECT_EQ(rc.user.token, "sa-token");
  EXPECT_EQ(rc.user.token_file, dir / "sa/token");
  EXPECT_EQ(rc.namespace_, "pod-ns");
  EXPECT_EQ(load_config({.namespace_override = "x"}).namespace_, "x");
  env.set("POD_NAMESPACE", "from-env");
  EXPECT_EQ(load_config({}).namespace_, "from-env");
  // A usable kubeconfig wins, but its implicit namespace defers to the pod's.
  std::string k = dir.write("k", "current-context: a\nclusters:\n" +
                                     cluster("c", "    server: https://x.example\n") +
                                     "contexts:\n" + context("a", "c", "u"));
  RestConfig kc = load_config({.kubeconfig = k});
  EXPECT_EQ(kc.cluster.server, "https://x.example:443");
  EXPECT_EQ(kc.namespace_, "from-env");
}

/// What spdlog's default logger writes while it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_st>(text_)));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

// What lpk-agent restore-watch reads in its pod, as rest.InClusterConfig: nothing outside a pod
// (no variables, or no token), else the service host and port, the token file and the CA.
TEST_F(LoadConfig, InClusterConfigAsRestoreWatchReadsIt) {
  env.set("LPK_SERVICEACCOUNT_DIR", dir / "sa");
  EXPECT_FALSE(in_cluster_config());
  env.set("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  env.set("KUBERNETES_SERVICE_PORT", "443");
  EXPECT_FALSE(in_cluster_config()) << "no token file: not a pod";
  dir.write("sa/token", "restorer-token\n");
  dir.write("sa/namespace", "demo");
  auto rc = in_cluster_config();
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->cluster.server, "https://10.96.0.1:443");
  EXPECT_EQ(rc->user.token, "restorer-token");
  EXPECT_EQ(rc->cluster.ca_pem, "");  // no ca.crt: said in the log, system roots then
  EXPECT_EQ(rc->namespace_, "demo");
  EXPECT_EQ(rc->context_name, "");
  dir.write("sa/ca.crt", "CLUSTER-CA");
  EXPECT_EQ(in_cluster_config()->cluster.ca_pem, "CLUSTER-CA");
}

TEST_F(LoadConfig, ServerSchemeAndPlainHttpDropsCredentials) {
  std::string k = dir.write(
      "k", "current-context: tls\nclusters:\n" +
               cluster("bare", "    server: 10.0.0.1:6443\n    insecure-skip-tls-verify: true\n") +
               cluster("plain", "    server: 10.0.0.2:8080\n") + "users:\n" +
               user("u", "    token: secret\n") + "contexts:\n" + context("tls", "bare", "u") +
               context("plain", "plain", "u"));
  CapturedLog log;
  RestConfig tls = load_config({.kubeconfig = k});
  EXPECT_EQ(tls.cluster.server, "https://10.0.0.1:6443");
  EXPECT_EQ(tls.user.token, "secret");
  // Only a plain-http server earns the warning (lpk-proxy run printed it for every https one).
  EXPECT_EQ(log.text(), "");
  RestConfig plain = load_config({.kubeconfig = k, .context = "plain"});
  EXPECT_EQ(plain.cluster.server, "http://10.0.0.2:8080");
  EXPECT_EQ(plain.user.token, "");  // client-go sends credentials only over TLS
  EXPECT_NE(log.text().find("is plain http"), std::string::npos) << log.text();
}

TEST(ServerUrl, Forms) {
  using detail::parse_server_url;
  EXPECT_EQ(parse_server_url("https://h:6443/a/b/", false)->base(), "https://h:6443/a/b");
  EXPECT_EQ(parse_server_url("https://[::1]:6443", false)->host, "::1");
  EXPECT_EQ(parse_server_url("https://[::1]", false)->base(), "https://[::1]:443");
  EXPECT_EQ(parse_server_url("h", false)->base(), "http://h:80");
  EXPECT_FALSE(parse_server_url("h:1/prefix", true));  // a bare host:port may not carry a path
  EXPECT_FALSE(parse_server_url("ftp://h", true));
  EXPECT_FALSE(parse_server_url("https://h:99999", true));
  EXPECT_FALSE(parse_server_url("https://", true));
}

}  // namespace
}  // namespace lpk::kube
