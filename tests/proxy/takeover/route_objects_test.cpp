// Header-routed sessions' objects: the --route-header value, the Service pointed at the router
// and back, the router and the session's agent Deployment.
#include "proxy/takeover/route_objects.hpp"

#include <gtest/gtest.h>

namespace lpk::proxy {
namespace {

using nlohmann::json;

json routed_test_service() {
  return json::parse(R"({"apiVersion":"v1","kind":"Service",
    "metadata":{"name":"api","namespace":"demo","resourceVersion":"41",
                "annotations":{"team":"core"}},
    "spec":{"selector":{"app":"api","tier":"backend"},"clusterIP":"10.96.0.20",
            "ports":[{"name":"http","port":80,"targetPort":"web"}]}})");
}

json routed_test_template() {
  return json::parse(R"({"metadata":{"labels":{"app":"api","tier":"backend"}},
    "spec":{"containers":[{"name":"api","image":"lpk/demo-api:1",
      "ports":[{"name":"web","containerPort":8080}],
      "volumeMounts":[{"name":"data","mountPath":"/data"},{"name":"conf","mountPath":"/etc/api"}]}],
      "volumes":[{"name":"conf","configMap":{"name":"api"}}]}})");
}

TEST(RouteHeader, DefaultsToLpksHeaderAndTheSessionId) {
  auto route = parse_route_header("", "abcd1234");
  EXPECT_EQ(route.header, "x-lpk-route");
  EXPECT_EQ(route.value, "abcd1234");
  route = parse_route_header("alice", "abcd1234");
  EXPECT_EQ(route.header, "x-lpk-route");
  EXPECT_EQ(route.value, "alice");
}

TEST(RouteHeader, TakesANameLowerCasedAndAnEmptyValueMeansTheSessionId) {
  auto route = parse_route_header("X-Dev=bob", "abcd1234");
  EXPECT_EQ(route.header, "x-dev");
  EXPECT_EQ(route.value, "bob");
  EXPECT_EQ(parse_route_header("x-dev=", "abcd1234").value, "abcd1234");
}

TEST(RouteHeader, RefusesANameThatIsNotATokenAndAValueWithSpaces) {
  EXPECT_THROW(parse_route_header("x dev=bob", "s"), std::invalid_argument);
  EXPECT_THROW(parse_route_header("x:dev=bob", "s"), std::invalid_argument);
  EXPECT_THROW(parse_route_header("=bob", "s"), std::invalid_argument);
  EXPECT_THROW(parse_route_header("x-dev=a b", "s"), std::invalid_argument);
  EXPECT_FALSE(is_http_token("x(y"));
  EXPECT_TRUE(is_http_token("X-Request_ID.1~"));
}

TEST(RouteNames, StayDnsLabelsForLongServiceNames) {
  std::string long_name(60, 'a');
  for (const auto& name : {router_name(long_name), original_service_name(long_name),
                           route_lock_name(long_name), routed_deployment_name(long_name, "abcd1234")}) {
    EXPECT_LE(name.size(), 63u) << name;
  }
  EXPECT_NE(router_name(long_name + "x"), router_name(long_name + "y"));
  EXPECT_EQ(routed_deployment_name("api", "abcd1234"), "api-lpk-abcd1234");
}

TEST(RouteMembers, RoutingTheServiceAndLeavingItGivesTheServiceBackExactly) {
  auto service = routed_test_service();
  RouteMembers members{{"s1", {{"x-lpk-route", "alice"}, "api-lpk-s1", "{}"}}};
  auto routed = with_route_members(service, members);
  EXPECT_EQ(routed["spec"]["selector"], json({{"lpk.dev/router", "api"}}));
  EXPECT_EQ(routed["metadata"]["resourceVersion"], "41") << "kept for the PUT's conflict check";
  EXPECT_EQ(original_selector(routed), service["spec"]["selector"]);
  ASSERT_EQ(route_members(routed).size(), 1u);
  EXPECT_EQ(route_members(routed).at("s1").route.value, "alice");
  // A second session joins; the saved selector stays the original, not the router's.
  members["s2"] = {{"x-dev", "bob"}, "api-lpk-s2", "{}"};
  auto twice = with_route_members(routed, members);
  EXPECT_EQ(original_selector(twice), service["spec"]["selector"]);
  EXPECT_EQ(route_members(twice).size(), 2u);
  EXPECT_EQ(with_route_members(twice, {}), service);
}

TEST(RouteMembers, AServiceWithoutAnnotationsGetsNoneBack) {
  auto service = routed_test_service();
  service["metadata"].erase("annotations");
  auto routed = with_route_members(service, {{"s1", {{"x-lpk-route", "a"}, "d", "{}"}}});
  EXPECT_EQ(with_route_members(routed, {}), service);
  EXPECT_TRUE(route_members(service).empty());
}

TEST(Router, ListensOnTheContainerPortsUnderTheirNamesAndFallsBackToLpksService) {
  auto service = routed_test_service();
  auto ports = routed_ports(routed_test_template()["spec"], "api", {{"http", 80, 8080, "TCP"}});
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0].name, "web") << "a named targetPort must resolve on the router's pods too";
  RouterSpec spec;
  spec.ns = "demo";
  spec.service = "api";
  spec.image = "lpk/lpk-agent:dev";
  spec.selector = original_selector(service);
  spec.ports = ports;
  spec.original_cluster_ip = "10.96.0.30";
  spec.admin_port = router_admin_port(ports);
  auto d = router_deployment(spec);
  const auto& pod = d["spec"]["template"];
  EXPECT_EQ(pod["metadata"]["labels"]["lpk.dev/router"], "api");
  const auto& c = pod["spec"]["containers"][0];
  auto args = c["args"].get<std::vector<std::string>>();
  EXPECT_EQ(args, (std::vector<std::string>{"router", "--namespace", "demo", "--service", "api",
                                            "--original-selector", "app=api,tier=backend",
                                            "--admin-port", "15090", "--port",
                                            "8080=10.96.0.30:8080"}));
  EXPECT_EQ(c["ports"][0], json({{"containerPort", 8080}, {"name", "web"}, {"protocol", "TCP"}}));
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], 15090);
  auto original = original_service(service, ports);
  EXPECT_EQ(original["metadata"]["name"], "lpk-original-api");
  EXPECT_EQ(original["spec"]["selector"], service["spec"]["selector"]);
  EXPECT_EQ(router_admin_port({{"", 15090, 80}, {"", 15091, 81}}), 15092);
}

TEST(RoutedDeployment, CopiesTheTemplateWithTheAgentAndLabelsNoServiceSelects) {
  AgentSpec agent;
  agent.serve_ports = {8080};
  agent.session = R"({"id":"s1"})";
  auto d = routed_deployment("demo", "api", "s1", {"x-lpk-route", "alice"},
                             routed_test_template(), "api", agent);
  EXPECT_EQ(d["metadata"]["name"], "api-lpk-s1");
  EXPECT_EQ(d["metadata"]["annotations"]["lpk.dev/created-by-session"], "s1");
  EXPECT_EQ(d["metadata"]["annotations"]["lpk.dev/route-service"], "api");
  const auto& tmpl = d["spec"]["template"];
  EXPECT_FALSE(tmpl["metadata"]["labels"].contains("app")) << "no Service of the app selects it";
  EXPECT_EQ(tmpl["metadata"]["labels"]["lpk.dev/route-for"], "api");
  EXPECT_EQ(tmpl["metadata"]["annotations"]["lpk.dev/route-value"], "alice");
  const auto& c = tmpl["spec"]["containers"][0];
  EXPECT_EQ(c["command"], json({"lpk-agent"}));
  EXPECT_EQ(c["volumeMounts"], json::parse(R"([{"name":"conf","mountPath":"/etc/api"}])"))
      << "a mount of a volume the template lacks (a StatefulSet's claim) could not start";
  EXPECT_EQ(d["spec"]["replicas"], 0);
}

}  // namespace
}  // namespace lpk::proxy
