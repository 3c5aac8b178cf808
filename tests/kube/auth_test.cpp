#include "kube/auth.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kube/text.hpp"
#include "kube/detail/exec_plugin.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::kube {
namespace {

using lpk::test::TempDir;

std::string read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> headers_of(Credentials& c) { return c.current().headers; }

TEST(Credentials, StaticTokenBasicAndImpersonationHeaders) {
  RestConfig rc;
  rc.user.token = "tok";
  rc.user.impersonate_user = "bob";
  rc.user.impersonate_uid = "1234";
  rc.user.impersonate_groups = {"devs", "ops"};
  rc.user.impersonate_extra = {{"example.com/scopes", {"view", "edit"}}};
  Credentials c(rc);
  EXPECT_EQ(headers_of(c), (std::vector<std::string>{
                               "Authorization: Bearer tok", "Impersonate-User: bob",
                               "Impersonate-Uid: 1234", "Impersonate-Group: devs",
                               "Impersonate-Group: ops",
                               "Impersonate-Extra-example.com%2Fscopes: view",
                               "Impersonate-Extra-example.com%2Fscopes: edit"}));
  EXPECT_FALSE(c.unauthorized());  // nothing can change: no retry is worth it
  RestConfig basic;
  basic.user.username = "admin";
  basic.user.password = "s3cret:x";
  Credentials b(basic);
  EXPECT_EQ(headers_of(b), std::vector<std::string>{"Authorization: Basic " +
                                                    text::base64_encode("admin:s3cret:x")});
}

TEST(Credentials, TokenFileIsCachedAndReReadAfterA401) {
  TempDir dir;
  RestConfig rc;
  rc.user.token_file = dir.write("token", "first\n");
  rc.user.token = "first";
  Credentials c(rc);
  EXPECT_EQ(headers_of(c)[0], "Authorization: Bearer first");
  dir.write("token", "second");
  EXPECT_EQ(headers_of(c)[0], "Authorization: Bearer first");  // cached for ~a minute
  EXPECT_TRUE(c.unauthorized());
  EXPECT_EQ(headers_of(c)[0], "Authorization: Bearer second");
  std::filesystem::remove(dir / "token");
  EXPECT_TRUE(c.unauthorized());
  EXPECT_EQ(headers_of(c)[0], "Authorization: Bearer second");  // the last good token
}

/// A plugin that logs each run, its arguments and KUBERNETES_EXEC_INFO, then prints the
/// credential in $PLUGIN_OUT (a file).
std::string write_plugin(const TempDir& dir) {
  return dir.write("bin/plugin",
                   "#!/bin/sh\n"
                   "echo run >> \"$PLUGIN_DIR/runs\"\n"
                   "echo \"$@\" > \"$PLUGIN_DIR/args\"\n"
                   "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$PLUGIN_DIR/info\"\n"
                   "echo \"plugin stderr is passed through\" >&2\n"
                   "cat \"$PLUGIN_DIR/out\"\n"
                   "exit \"${PLUGIN_EXIT:-0}\"\n",
                   0755);
}

class ExecPlugin : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    plugin = write_plugin(dir);
    rc.cluster.server = "https://10.0.0.1:6443";
    rc.cluster.ca_pem = "CA";
    ExecConfig x;
    x.api_version = GetParam();
    x.command = plugin;
    x.args = {"--flag", "value"};
    x.env = {{"PLUGIN_DIR", dir.path()}};
    x.interactive_mode = "Never";
    x.provide_cluster_info = true;
    x.cluster_extension = {{"audience", "lpk"}};
    rc.user.exec = x;
  }
  void answer(const nlohmann::json& status) {
    dir.write("out", nlohmann::json{{"apiVersion", GetParam()}, {"kind", "ExecCredential"},
                                    {"status", status}}
                         .dump());
  }
  int runs() {
    std::string r = read(dir / "runs");
    return int(std::count(r.begin(), r.end(), '\n'));
  }
  TempDir dir;
  std::string plugin;
  RestConfig rc;
};

TEST_P(ExecPlugin, RunsOnceCachesAndRunsAgainAfterA401) {
  answer({{"token", "exec-token"}});
  Credentials c(rc);
  EXPECT_EQ(headers_of(c)[0], "Authorization: Bearer exec-token");
  EXPECT_EQ(headers_of(c)[0], "Authorization: Bearer exec-token");
  EXPECT_EQ(runs(), 1);
  EXPECT_EQ(read(dir / "args"), "--flag value\n");
  auto info = nlohmann::json::parse(read(dir / "info"));
  EXPECT_EQ(info["apiVersion"], GetParam());
  EXPECT_EQ(info["kind"], "ExecCredential");
  EXPECT_EQ(info["spec"]["interactive"], false);
  EXPECT_EQ(info["spec"]["cluster"]["server"], "https://10.0.0.1:6443");
  EXPECT_EQ(info["spec"]["cluster"]["certificate-authority-data"], text::base64_encode("CA"));
  EXPECT_EQ(info["spec"]["cluster"]["config"]["audience"], "lpk");
  answer({{"token", "renewed"}});
  EXPECT_TRUE(c.unauthorized());
  EXPECT_EQ(headers_of(c)[0], "Authorization: Bearer renewed");
  EXPECT_EQ(runs(), 2);
}

TEST_P(ExecPlugin, ExpiryAndCertificates) {
  answer({{"token", "t"}, {"expirationTimestamp", "2001-01-01T00:00:00Z"}});
  Credentials expired(rc);
  headers_of(expired);
  headers_of(expired);
  EXPECT_EQ(runs(), 2);  // expired at once: every call runs the plugin
  answer({{"clientCertificateData", "CERT"}, {"clientKeyData", "KEY"},
          {"expirationTimestamp", "2999-01-01T00:00:00.5+02:00"}});
  Credentials certs(rc);
  auto m = certs.current();
  certs.current();
  EXPECT_EQ(runs(), 3);
  EXPECT_TRUE(m.headers.empty());
  EXPECT_EQ(m.client_cert_pem, "CERT");
  EXPECT_EQ(m.client_key_pem, "KEY");
}

TEST_P(ExecPlugin, WithoutClusterInfoAndSkippedWhenATokenIsSet) {
  rc.user.exec->provide_cluster_info = false;
  answer({{"token", "t"}});
  Credentials c(rc);
  c.current();
  EXPECT_FALSE(nlohmann::json::parse(read(dir / "info"))["spec"].contains("cluster"));
  rc.user.token = "static";
  Credentials tok(rc);
  EXPECT_EQ(headers_of(tok)[0], "Authorization: Bearer static");
  EXPECT_EQ(runs(), 1);
}

std::string current_error(RestConfig rc) {
  try {
    Credentials(rc).current();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST_P(ExecPlugin, FailuresAreOneLineErrors) {
  answer({{"token", "t"}});
  ::setenv("PLUGIN_EXIT", "3", 1);
  std::string err = current_error(rc);
  ::unsetenv("PLUGIN_EXIT");
  EXPECT_NE(err.find("failed with exit code 3"), std::string::npos) << err;
  dir.write("out", nlohmann::json{{"apiVersion", "client.authentication.k8s.io/v1alpha1"},
                                  {"kind", "ExecCredential"}, {"status", {{"token", "t"}}}}
                       .dump());
  err = current_error(rc);
  EXPECT_NE(err.find("plugin returned version client.authentication.k8s.io/v1alpha1"),
            std::string::npos)
      << err;
  answer({{"clientCertificateData", "CERT"}});
  EXPECT_NE(current_error(rc).find("only a certificate or a key"), std::string::npos);
  answer(nlohmann::json::object());
  EXPECT_NE(current_error(rc).find("did not return a token"), std::string::npos);
  dir.write("out", "not json");
  EXPECT_NE(current_error(rc).find("not a JSON ExecCredential"), std::string::npos);
  answer({{"token", "t"}, {"expirationTimestamp", "tomorrow"}});
  EXPECT_NE(current_error(rc).find("not RFC 3339"), std::string::npos);
  RestConfig missing = rc;
  missing.user.exec->command = "lpk-no-such-plugin";
  missing.user.exec->install_hint = "install it from example.com";
  err = current_error(missing);
  EXPECT_NE(err.find("executable not found; install it from example.com"), std::string::npos)
      << err;
  for (const std::string& e : {err}) EXPECT_EQ(e.find('\n'), std::string::npos);
}

TEST_P(ExecPlugin, InteractiveAlwaysWithoutATerminalIsAnError) {
  if (::isatty(STDIN_FILENO)) GTEST_SKIP() << "stdin is a terminal here";
  answer({{"token", "t"}});
  rc.user.exec->interactive_mode = "Always";
  std::string err = current_error(rc);
  EXPECT_NE(err.find("standard input is not a terminal"), std::string::npos) << err;
  rc.user.exec->interactive_mode = "IfAvailable";
  Credentials c(rc);
  c.current();
  EXPECT_EQ(nlohmann::json::parse(read(dir / "info"))["spec"]["interactive"], false);
}

INSTANTIATE_TEST_SUITE_P(Versions, ExecPlugin,
                         ::testing::Values("client.authentication.k8s.io/v1",
                                           "client.authentication.k8s.io/v1beta1"),
                         [](const auto& info) {
                           return info.param.substr(info.param.rfind('/') + 1);
                         });

TEST(Rfc3339, Forms) {
  using detail::parse_rfc3339;
  using namespace std::chrono;
  auto t = parse_rfc3339("2026-11-30T12:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(duration_cast<seconds>(t->time_since_epoch()).count(), 1796040000);
  EXPECT_EQ(parse_rfc3339("2026-11-30T14:00:00.123456+02:00"), t);
  EXPECT_EQ(parse_rfc3339("2026-11-30T07:30:00-04:30"), t);
  for (const char* bad : {"", "2026-11-30", "2026-11-30T12:00:00", "2026-13-30T12:00:00Z",
                          "2026-11-30T12:00:00+0200", "2026-11-30T12:00:00.Z"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

}  // namespace
}  // namespace lpk::kube
