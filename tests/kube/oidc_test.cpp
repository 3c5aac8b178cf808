#include "kube/detail/oidc.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "kube/client.hpp"
#include "kube/text.hpp"
#include "tests/kube/fake_server.hpp"
#include "tests/kube/test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::kube {
namespace {

using lpk::test::TempDir;
using std::chrono::system_clock;
using test::FakeServer;
using test::SeenRequest;

std::string base64url(const std::string& s) {
  auto b = text::base64_encode(s);
  for (auto& c : b) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!b.empty() && b.back() == '=') b.pop_back();
  return b;
}

// An unsigned JWT (the client never checks signatures; the API server does).
std::string jwt(long long exp) {
  return base64url(R"({"alg":"RS256"})") + "." +
         base64url(R"({"sub":"dev","exp":)" + std::to_string(exp) + "}") + ".sig";
}

long long now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(system_clock::now().time_since_epoch())
      .count();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Oidc, ExpiryIsTheJwtExpClaimTenSecondsEarly) {
  auto now = system_clock::now();
  EXPECT_EQ(detail::jwt_expiry(jwt(1700000000)), 1700000000);
  EXPECT_FALSE(detail::id_token_expired(jwt(now_s() + 60), now));
  EXPECT_TRUE(detail::id_token_expired(jwt(now_s() + 5), now));  // within client-go's 10 s
  EXPECT_TRUE(detail::id_token_expired(jwt(now_s() - 60), now));
}

TEST(Oidc, MalformedTokensHaveNoExpiryAndCountAsValid) {
  for (const std::string& bad : std::vector<std::string>{
           "", "abc", "a.b", "a.b.c.d", "a.!!!.c", "a." + base64url("[1]") + ".c",
           "a." + base64url(R"({"exp":"soon"})") + ".c", "a." + base64url("{not json") + ".c"}) {
    EXPECT_FALSE(detail::jwt_expiry(bad)) << bad;
    EXPECT_FALSE(detail::id_token_expired(bad, system_clock::now())) << bad;
  }
}

TEST(Oidc, KubeconfigAuthProviderBecomesOidcConfig) {
  TempDir dir;
  auto env = test::clean_env(dir.path());
  auto path = dir.path() + "/config";
  std::ofstream(path) << "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                         "clusters: [{name: c, cluster: {server: 'https://k.example'}}]\n"
                         "contexts: [{name: x, context: {cluster: c, user: dev}}]\n"
                         "users:\n- name: dev\n  user:\n    auth-provider:\n      name: oidc\n"
                         "      config:\n        id-token: idt\n        refresh-token: rt\n"
                         "        idp-issuer-url: https://issuer.example\n"
                         "        client-id: cid\n        client-secret: cs\n"
                         "        idp-certificate-authority-data: " +
                             text::base64_encode("PEM") + "\n";
  auto rc = load_config({.kubeconfig = path});
  ASSERT_TRUE(rc.user.oidc);
  EXPECT_EQ(rc.user.oidc->id_token, "idt");
  EXPECT_EQ(rc.user.oidc->refresh_token, "rt");
  EXPECT_EQ(rc.user.oidc->issuer_url, "https://issuer.example");
  EXPECT_EQ(rc.user.oidc->client_id, "cid");
  EXPECT_EQ(rc.user.oidc->client_secret, "cs");
  EXPECT_EQ(rc.user.oidc->issuer_ca_pem, "PEM");
  EXPECT_EQ(rc.user.oidc->kubeconfig, path);
  EXPECT_EQ(rc.user.oidc->user_name, "dev");
  EXPECT_EQ(Credentials(rc).current().headers.front(), "Authorization: Bearer idt");
}

// The issuer (tests/kube/oidc_issuer.py) as a child whose stdout we read; it exits after the
// token endpoint's answer.
struct Issuer {
  Issuer(const std::string& dir, const std::string& refresh_token, const std::string& new_token) {
    std::string cmd = std::string("python3 ") + LPK_SOURCE_DIR + "/tests/kube/oidc_issuer.py " +
                      dir + " " + refresh_token + " " + new_token;
    out = ::popen(cmd.c_str(), "r");
    char line[512];
    if (out && std::fgets(line, sizeof line, out)) {
      std::istringstream ss(line);
      std::string word;
      ss >> word >> url >> ca_file;
    }
  }
  std::string finish() {  // what it saw, once it has exited
    std::string seen;
    char line[512];
    while (out && std::fgets(line, sizeof line, out)) seen += line;
    if (out) ::pclose(out);
    out = nullptr;
    return seen;
  }
  ~Issuer() { finish(); }
  FILE* out = nullptr;
  std::string url, ca_file;
};

TEST(Oidc, ExpiredTokenIsRefreshedAfterA401AndWrittenBack) {
  TempDir dir;
  std::string expired = jwt(now_s() - 3600), fresh = jwt(now_s() + 3600);
  Issuer issuer(dir.path(), "rt-1", fresh);
  ASSERT_FALSE(issuer.url.empty()) << "the issuer did not start (python3 and openssl needed)";
  // The API server takes only the fresh token.
  FakeServer api([&](const SeenRequest& r, int fd) {
    bool ok = r.header("authorization") == "Bearer " + fresh;
    FakeServer::send_all(fd, ok ? FakeServer::response(200, R"({"kind":"Namespace"})")
                                : FakeServer::response(401, R"({"kind":"Status","code":401})"));
  });
  auto kubeconfig = dir.path() + "/config";
  std::ofstream(kubeconfig) << "# kept\napiVersion: v1\nkind: Config\npreferences: {colors: true}\n"
                               "users:\n- name: other\n  user: {token: t}\n"
                               "- name: dev\n  user:\n    auth-provider:\n      name: oidc\n"
                               "      config: {id-token: " +
                                   expired + ", refresh-token: rt-1}\n";
  RestConfig rc;
  rc.cluster.server = "http://127.0.0.1:" + std::to_string(api.port());
  rc.user.oidc =
      OidcConfig{expired,    "rt-1", issuer.url, "kube-client", "s3cret", read_file(issuer.ca_file),
                 kubeconfig, "dev"};
  Client client(rc);
  // Expired: refreshed before the first request, which then succeeds.
  EXPECT_EQ(client.get("/api/v1/namespaces/default")["kind"], "Namespace");
  auto seen = issuer.finish();
  EXPECT_NE(seen.find("GET /.well-known/openid-configuration"), std::string::npos) << seen;
  EXPECT_NE(seen.find("POST /token grant_type=refresh_token refresh_token=rt-1 "
                      "client=kube-client:s3cret"),
            std::string::npos)
      << seen;
  auto written = YAML::LoadFile(kubeconfig);
  auto config = written["users"][1]["user"]["auth-provider"]["config"];
  EXPECT_EQ(config["id-token"].as<std::string>(), fresh);
  EXPECT_EQ(config["refresh-token"].as<std::string>(), "rt-1-next");
  EXPECT_EQ(written["users"][0]["user"]["token"].as<std::string>(), "t");
  EXPECT_TRUE(written["preferences"]["colors"].as<bool>());
}

TEST(Oidc, A401WithAnUnexpiredTokenRefreshesToo) {
  TempDir dir;
  std::string revoked = jwt(now_s() + 3600), fresh = jwt(now_s() + 7200);
  Issuer issuer(dir.path(), "rt-1", fresh);
  ASSERT_FALSE(issuer.url.empty());
  FakeServer api([&](const SeenRequest& r, int fd) {
    bool ok = r.header("authorization") == "Bearer " + fresh;
    FakeServer::send_all(fd, ok ? FakeServer::response(200, R"({"kind":"Namespace"})")
                                : FakeServer::response(401, R"({"kind":"Status","code":401})"));
  });
  auto kubeconfig = dir.path() + "/config";
  std::ofstream(kubeconfig) << "users:\n- name: dev\n  user:\n    auth-provider:\n"
                               "      name: oidc\n      config: {id-token: x}\n";
  RestConfig rc;
  rc.cluster.server = "http://127.0.0.1:" + std::to_string(api.port());
  rc.user.oidc = OidcConfig{
      revoked, "rt-1", issuer.url, "kube-client", "", read_file(issuer.ca_file), kubeconfig, "dev"};
  Client client(rc);
  EXPECT_EQ(client.get("/api/v1/namespaces/default")["kind"], "Namespace");
  EXPECT_EQ(api.requests().size(), 2u);  // the 401, then the retry with the new token
}

TEST(Oidc, RefusedRefreshIsOneLineSayingToLogInAgain) {
  TempDir dir;
  Issuer issuer(dir.path(), "the-right-one", "unused");
  ASSERT_FALSE(issuer.url.empty());
  OidcConfig o{jwt(now_s() - 60),         "a-stale-one",          issuer.url, "kube-client", "s",
               read_file(issuer.ca_file), dir.path() + "/config", "dev"};
  try {
    detail::refresh_oidc(o);
    ADD_FAILURE() << "refresh_oidc accepted a refused grant";
  } catch (const ConfigError& e) {
    std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find("HTTP 400"), std::string::npos) << what;
    EXPECT_NE(what.find("kubectl oidc-login"), std::string::npos) << what;
  }
  // Without the issuer's CA the certificate is not trusted.
  Issuer second(dir.path(), "rt", "unused");
  o.issuer_url = second.url;
  o.issuer_ca_pem = "";
  EXPECT_THROW(detail::refresh_oidc(o), ConfigError);
  EXPECT_NE(second.finish().find("TLS refused"), std::string::npos);
}

}  // namespace
}  // namespace lpk::kube
