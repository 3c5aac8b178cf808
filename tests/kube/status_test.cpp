#include "kube/detail/status.hpp"

#include <gtest/gtest.h>

#include "kube/client.hpp"
#include "kube/detail/http.hpp"
#include "tests/kube/test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::kube {
namespace {

TEST(ApiPath, Parts) {
  auto p = detail::parse_api_path("/apis/apps/v1/namespaces/demo/deployments/web?x=1");
  EXPECT_EQ(p.group, "apps");
  EXPECT_EQ(p.ns, "demo");
  EXPECT_EQ(p.resource_label(), "deployments.apps");
  EXPECT_EQ(p.name, "web");
  auto pf = detail::parse_api_path("/api/v1/namespaces/demo/pods/api-1/portforward");
  EXPECT_EQ(pf.resource_label(), "pods/portforward");
  auto ns = detail::parse_api_path("/api/v1/namespaces/demo");
  EXPECT_EQ(ns.resource, "namespaces");
  EXPECT_EQ(ns.name, "demo");
  EXPECT_EQ(ns.ns, "");
  EXPECT_EQ(detail::parse_api_path("/healthz").resource_label(), "resource");
}

TEST(ResourcePath, CoreAndGroups) {
  EXPECT_EQ(resource_path("v1", "demo", "services", "api"), "/api/v1/namespaces/demo/services/api");
  EXPECT_EQ(resource_path("apps/v1", "demo", "deployments", "web"),
            "/apis/apps/v1/namespaces/demo/deployments/web");
  EXPECT_EQ(resource_path("v1", "", "namespaces"), "/api/v1/namespaces");
  EXPECT_EQ(query_escape("app=web,tier in (a,b)"), "app%3Dweb%2Ctier%20in%20%28a%2Cb%29");
}

TEST(StatusErrors, OneSentenceEach) {
  std::string forbidden = R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"deployments.apps \"web\" is forbidden: User \"dev\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"demo\"","reason":"Forbidden","details":{"name":"web","group":"apps","kind":"deployments"},"code":403})";
  ApiError e = detail::api_error(403, forbidden, "patch",
                                 "/apis/apps/v1/namespaces/demo/deployments/web", "ctx");
  EXPECT_EQ(e.code, 403);
  EXPECT_EQ(e.reason, "Forbidden");
  EXPECT_EQ(e.status["details"]["name"], "web");
  EXPECT_EQ(std::string(e.what()).rfind("kube: not allowed to patch deployments.apps in namespace demo: "
                                        "deployments.apps \"web\" is forbidden",
                                        0),
            0u)
      << e.what();
  ApiError nf = detail::api_error(
      404, R"({"kind":"Status","message":"services \"api\" not found","reason":"NotFound","code":404})",
      "get", "/api/v1/namespaces/demo/services/api", "ctx");
  EXPECT_STREQ(nf.what(),
               "kube: not found: services \"api\" in namespace demo (services \"api\" not found)");
  ApiError un = detail::api_error(401, R"({"kind":"Status","message":"Unauthorized","code":401})",
                                  "list", "/api/v1/pods", "context \"dev\" (/k)");
  EXPECT_NE(std::string(un.what()).find("rejected the credentials of context \"dev\" (/k)"),
            std::string::npos);
  // Not a Status: a proxy's HTML, a kubelet's text, nothing at all.
  ApiError html = detail::api_error(502, "<html>\n<b>Bad Gateway</b>\n</html>", "get",
                                    "/api/v1/namespaces/a/pods/p", "ctx");
  EXPECT_STREQ(html.what(),
               "kube: cannot get pods \"p\" in namespace a: HTTP 502: <html> <b>Bad Gateway</b> "
               "</html> (502 Unknown)");
  EXPECT_TRUE(html.status.is_null());
  ApiError empty = detail::api_error(403, "", "get", "/api/v1/namespaces/a/pods/p/portforward", "c");
  EXPECT_NE(std::string(empty.what()).find("pods/portforward in namespace a: HTTP 403 with an empty body"),
            std::string::npos);
  for (const ApiError* x : {&e, &nf, &un, &html, &empty})
    EXPECT_EQ(std::string(x->what()).find('\n'), std::string::npos) << x->what();
}

TEST(WatchLine, ValidAndMalformed) {
  std::string err;
  auto ev = detail::parse_watch_line(R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})", err);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, "ADDED");
  EXPECT_EQ(ev->object["metadata"]["name"], "a");
  for (const char* bad : {"", "{", "[]", "null", R"({"type":"ADDED"})",
                          R"({"type":5,"object":{}})", R"({"type":"ADDED","object":"x"})",
                          R"({"type":"EXPLODED","object":{}})", "\xff\xfe"}) {
    err.clear();
    EXPECT_FALSE(detail::parse_watch_line(bad, err)) << bad;
    EXPECT_FALSE(err.empty());
  }
}

TEST(Proxy, ClientGoChoice) {
  lpk::test::TempDir dir;
  auto env = test::clean_env(dir.path());
  ClusterConfig c;
  c.server = "https://10.1.2.3:6443";
  EXPECT_EQ(proxy_for(c), "");
  env.set("HTTP_PROXY", "http://plain-proxy:3128");
  EXPECT_EQ(proxy_for(c), "");  // an https server uses HTTPS_PROXY only
  env.set("https_proxy", "corp-proxy:3128");
  EXPECT_EQ(proxy_for(c), "http://corp-proxy:3128");  // no scheme means http
  env.set("HTTPS_PROXY", "https://upper:443");
  EXPECT_EQ(proxy_for(c), "https://upper:443");  // upper case first
  for (const char* np : {"10.0.0.0/8", "10.1.2.3", "10.1.2.3:6443", "*", " other , 10.1.2.3 "}) {
    env.set("NO_PROXY", np);
    EXPECT_EQ(proxy_for(c), "") << np;
  }
  env.set("NO_PROXY", "10.1.2.3:443,11.0.0.0/8");
  EXPECT_EQ(proxy_for(c), "https://upper:443");
  c.server = "https://api.corp.example:6443";
  for (const char* np : {"corp.example", ".corp.example", "*.corp.example", "api.corp.example"}) {
    env.set("NO_PROXY", np);
    EXPECT_EQ(proxy_for(c), "") << np;
  }
  env.set("NO_PROXY", "pi.corp.example,.api.corp.example");
  EXPECT_EQ(proxy_for(c), "https://upper:443");  // ".x" matches subdomains only
  for (const char* local : {"https://localhost:6443", "https://127.0.0.9:6443", "https://[::1]:6443"}) {
    c.server = local;
    EXPECT_EQ(proxy_for(c), "") << local;  // Go never proxies loopback
  }
  c.proxy_url = "socks5://sock:1080";  // proxy-url wins over everything
  EXPECT_EQ(proxy_for(c), "socks5h://sock:1080");
}

}  // namespace
}  // namespace lpk::kube
