#include "agent/router/route_table.hpp"

#include <gtest/gtest.h>

#include <map>

namespace lpk::router {
namespace {

using boost::asio::ip::make_address;
using boost::asio::ip::tcp;

Backend pod(const char* ip) { return {make_address(ip), 0}; }

/// A request's headers, as the router's lookup sees them.
struct Headers {
  std::map<std::string, std::string> values;
  std::optional<std::string_view> operator()(std::string_view name) const {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
};

RouteSet two_routes() {
  return {{{"x-lpk-route", "a", "s-a", {pod("10.0.0.1")}},
           {"x-lpk-route", "b", "s-b", {pod("10.0.0.2"), pod("10.0.0.3")}}},
          {pod("10.0.1.1"), pod("10.0.1.2")}};
}

TEST(RouteTable, UnknownUntilTheFirstUpdate) {
  RouteTable table;
  EXPECT_FALSE(table.known());
  EXPECT_FALSE(table.pick(Headers{}, 80).endpoint);
  table.update({});
  EXPECT_TRUE(table.known());
}

TEST(RouteTable, AHeaderValueWithARouteGoesToItsPodsAtTheRequestsPort) {
  RouteTable table;
  table.update(two_routes());
  auto p = table.pick(Headers{{{"x-lpk-route", "a"}}}, 8080);
  ASSERT_TRUE(p.endpoint);
  EXPECT_EQ(*p.endpoint, tcp::endpoint(make_address("10.0.0.1"), 8080));
  ASSERT_NE(p.route, nullptr);
  EXPECT_EQ(p.route->session, "s-a");
  // Round robin among the route's pods.
  auto b1 = table.pick(Headers{{{"x-lpk-route", "b"}}}, 80).endpoint;
  auto b2 = table.pick(Headers{{{"x-lpk-route", "b"}}}, 80).endpoint;
  auto b3 = table.pick(Headers{{{"x-lpk-route", "b"}}}, 80).endpoint;
  EXPECT_NE(*b1, *b2);
  EXPECT_EQ(*b1, *b3);
}

TEST(RouteTable, EverythingElseGoesRoundRobinToTheOriginals) {
  RouteTable table;
  table.update(two_routes());
  std::map<std::string, int> seen;
  for (auto* value : {"c", "", "A", "c"}) {
    auto p = table.pick(Headers{{{"x-lpk-route", value}}}, 80);
    ASSERT_TRUE(p.endpoint);
    EXPECT_EQ(p.route, nullptr);
    seen[p.endpoint->address().to_string()]++;
  }
  auto p = table.pick(Headers{{{"x-other", "a"}}}, 80);
  EXPECT_EQ(p.route, nullptr);
  EXPECT_EQ(seen, (std::map<std::string, int>{{"10.0.1.1", 2}, {"10.0.1.2", 2}}));
}

TEST(RouteTable, ARouteWithoutLivePodsFallsToTheOriginals) {
  RouteTable table;
  auto set = two_routes();
  set.routes[0].pods.clear();
  table.update(set);
  auto p = table.pick(Headers{{{"x-lpk-route", "a"}}}, 80);
  EXPECT_EQ(p.route, nullptr);
  EXPECT_EQ(p.endpoint->address().to_string().substr(0, 7), "10.0.1.");
}

TEST(RouteTable, NoOriginalsMeansNoEndpoint) {
  RouteTable table;
  table.update({{}, {}});
  EXPECT_FALSE(table.pick(Headers{}, 80).endpoint);
  EXPECT_FALSE(table.next_original(80));
}

TEST(RouteTable, FileTargetsKeepTheirPort) {
  RouteTable table;
  table.update({{{"h", "v", "", {tcp::endpoint(make_address("127.0.0.1"), 9001)}}},
                {tcp::endpoint(make_address("::1"), 9000)}});
  EXPECT_EQ(table.pick(Headers{{{"h", "v"}}}, 80).endpoint->port(), 9001);
  EXPECT_EQ(table.pick(Headers{}, 80).endpoint->port(), 9000);
}

TEST(RouteTable, CountsRequestsAcrossUpdatesAndDescribesItself) {
  RouteTable table;
  table.update(two_routes());
  table.pick(Headers{{{"x-lpk-route", "a"}}}, 80);
  table.pick(Headers{{{"x-lpk-route", "a"}}}, 80);
  table.pick(Headers{}, 80);
  table.next_original(80);  // an opaque connection: not a request
  auto set = two_routes();
  set.routes[0].pods.push_back(pod("10.0.0.9"));
  set.routes.pop_back();
  table.update(set);
  table.pick(Headers{{{"x-lpk-route", "a"}}}, 80);
  auto doc = table.describe("api");
  EXPECT_EQ(doc["service"], "api");
  ASSERT_EQ(doc["routes"].size(), 1u);
  EXPECT_EQ(doc["routes"][0]["requests"], 3);
  EXPECT_EQ(doc["routes"][0]["session"], "s-a");
  EXPECT_EQ(doc["routes"][0]["pods"], nlohmann::json({"10.0.0.1", "10.0.0.9"}));
  EXPECT_EQ(doc["original"]["requests"], 1);
  EXPECT_EQ(doc["original"]["pods"], nlohmann::json({"10.0.1.1", "10.0.1.2"}));
}

TEST(RouteTable, RoutesOfOneHeaderAndValuePoolTheirPods) {
  RouteTable table;
  table.update({{{"h", "v", "s1", {pod("10.0.0.1")}}, {"h", "v", "s1", {pod("10.0.0.2")}}}, {}});
  auto doc = table.describe("api");
  ASSERT_EQ(doc["routes"].size(), 1u);
  EXPECT_EQ(doc["routes"][0]["pods"].size(), 2u);
}

}  // namespace
}  // namespace lpk::router
