#include "agent/router/route_source.hpp"

#include <gtest/gtest.h>

#include "proxy/tunnel/route_labels.hpp"

namespace lpk::router {

using namespace tunnel;  // route_labels.hpp: the names both ends share
namespace {

using nlohmann::json;

json pod(const std::string& name, const std::string& ip, bool ready, json labels,
         json annotations = json::object()) {
  return {{"metadata", {{"name", name}, {"labels", labels}, {"annotations", annotations}}},
          {"status",
           {{"phase", "Running"},
            {"podIP", ip},
            {"conditions", {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}}}}}};
}

json session_labels(const std::string& id) {
  return {{std::string(kRouteForLabel), "api"}, {std::string(kSessionLabel), id}};
}

json route_annotations(const std::string& header, const std::string& value) {
  return {{std::string(kRouteHeaderAnnotation), header},
          {std::string(kRouteValueAnnotation), value}};
}

TEST(RouteSetFromPods, ReadyPodsWithAnIpCountAndLpkPodsAreNeverOriginals) {
  PodMap sessions{
      {"api-lpk-1", pod("api-lpk-1", "10.0.0.5", true, session_labels("s1"),
                        route_annotations("X-Lpk-Route", "alice"))},
      {"api-lpk-2", pod("api-lpk-2", "10.0.0.6", false, session_labels("s2"),
                        route_annotations("x-lpk-route", "bob"))},
      {"api-lpk-3", pod("api-lpk-3", "10.0.0.7", true, session_labels("s3"))},  // no route
  };
  PodMap originals{
      {"api-1", pod("api-1", "10.0.1.1", true, {{"app", "api"}})},
      {"api-2", pod("api-2", "10.0.1.2", false, {{"app", "api"}})},
      {"api-3", pod("api-3", "", true, {{"app", "api"}})},
      {"api-lpk-1", sessions["api-lpk-1"]},
      {"router",
       pod("router", "10.0.2.1", true, {{"app", "api"}, {std::string(kRouterLabel), "api"}})},
  };
  auto set = route_set_from_pods(sessions, originals);
  ASSERT_EQ(set.routes.size(), 2u);
  EXPECT_EQ(set.routes[0].header, "x-lpk-route");
  EXPECT_EQ(set.routes[0].value, "alice");
  EXPECT_EQ(set.routes[0].session, "s1");
  ASSERT_EQ(set.routes[0].pods.size(), 1u);
  EXPECT_EQ(set.routes[0].pods[0].address().to_string(), "10.0.0.5");
  EXPECT_EQ(set.routes[0].pods[0].port(), 0);
  EXPECT_EQ(set.routes[1].value, "bob");
  EXPECT_TRUE(set.routes[1].pods.empty());  // not ready
  ASSERT_EQ(set.originals.size(), 1u);
  EXPECT_EQ(set.originals[0].address().to_string(), "10.0.1.1");
}

TEST(ParseRoutesFile, ReadsRoutesAndOriginals) {
  std::string error;
  auto set = parse_routes_file(R"({"routes":[{"header":"X-Lpk-Route","value":"a","session":"id",
      "target":"127.0.0.1:8081"}],"originals":["127.0.0.1:8080","[::1]:8082"]})",
                               error);
  ASSERT_TRUE(set) << error;
  ASSERT_EQ(set->routes.size(), 1u);
  EXPECT_EQ(set->routes[0].header, "x-lpk-route");
  EXPECT_EQ(set->routes[0].session, "id");
  EXPECT_EQ(set->routes[0].pods[0].port(), 8081);
  ASSERT_EQ(set->originals.size(), 2u);
  EXPECT_EQ(set->originals[1].address().to_string(), "::1");
  EXPECT_TRUE(parse_routes_file(R"({"originals":[]})", error));
}

TEST(ParseRoutesFile, SaysWhatIsWrong) {
  for (const char* bad : {"", "[]", "{", R"({"routes":{}})", R"({"originals":["host:80"]})",
                          R"({"originals":["127.0.0.1"]})", R"({"originals":["127.0.0.1:0"]})",
                          R"({"routes":[{"header":"h","value":"v","target":"127.0.0.1:99999"}]})",
                          R"({"routes":[{"value":"v","target":"127.0.0.1:1"}]})"}) {
    std::string error;
    EXPECT_FALSE(parse_routes_file(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

}  // namespace
}  // namespace lpk::router
