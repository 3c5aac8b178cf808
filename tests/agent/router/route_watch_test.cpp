#include "agent/router/route_watch.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <functional>
#include <mutex>
#include <vector>

#include "proxy/tunnel/route_labels.hpp"
#include "tests/kube/fake_server.hpp"
#include "tests/slack.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::router {
namespace {

using namespace tunnel;  // route_labels.hpp: the names both ends share
using kube::test::FakeServer;
using kube::test::SeenRequest;
using nlohmann::json;

/// Runs `io` until `done()` or the (slack-stretched) bound; false when the bound came first.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds bound = std::chrono::milliseconds(10000)) {
  auto deadline = std::chrono::steady_clock::now() + slack(bound);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  return true;
}

TEST(RoutesFileWatch, ReadsTheFileAndEachChangeAndKeepsTheRoutesThroughABadOne) {
  test::TempDir dir;
  auto path = dir / "routes.json";
  boost::asio::io_context io;
  std::vector<RouteSet> updates;
  RoutesFileWatch watch(
      io.get_executor(), path, [&](RouteSet s) { updates.push_back(s); },
      std::chrono::milliseconds(10));
  watch.start();  // no file yet: nothing, and a warning
  EXPECT_TRUE(updates.empty());
  dir.write("routes.json", R"({"originals":["127.0.0.1:8080"]})");
  ASSERT_TRUE(run_until(io, [&] { return updates.size() == 1; }));
  EXPECT_EQ(updates[0].originals.size(), 1u);
  // Replaced at once, as a config map update does: a new inode.
  dir.write("routes.new", "{not json");
  std::rename((dir / "routes.new").c_str(), path.c_str());
  // The watch says so when it has read the bad file (and leaves the routes as they were).
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  spdlog::default_logger()->sinks().push_back(sink);
  auto said_bad = [&] {
    for (const auto& line : sink->last_formatted()) {
      if (line.find("not a JSON object; the routes stay as they were") != line.npos) return true;
    }
    return false;
  };
  ASSERT_TRUE(run_until(io, said_bad));
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(updates.size(), 1u);
  dir.write("routes.new", R"({"routes":[{"header":"h","value":"v","target":"127.0.0.1:1"}]})");
  std::rename((dir / "routes.new").c_str(), path.c_str());
  ASSERT_TRUE(run_until(io, [&] { return updates.size() == 2; }));
  EXPECT_EQ(updates[1].routes.size(), 1u);
  EXPECT_TRUE(updates[1].originals.empty());
  watch.stop();
}

json pod(const std::string& name, const std::string& ip, json labels, json annotations) {
  return {{"metadata", {{"name", name}, {"labels", labels}, {"annotations", annotations}}},
          {"status",
           {{"phase", "Running"},
            {"podIP", ip},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

json session_pod(const std::string& name, const std::string& ip, const std::string& value) {
  return pod(name, ip, {{std::string(kRouteForLabel), "api"}, {std::string(kSessionLabel), name}},
             {{std::string(kRouteHeaderAnnotation), "x-lpk-route"},
              {std::string(kRouteValueAnnotation), value}});
}

std::string list_of(json items) {
  return FakeServer::response(
      200, json{{"kind", "PodList"}, {"metadata", {{"resourceVersion", "10"}}}, {"items", items}}
               .dump());
}

TEST(PodWatch, ListsAndWatchesSessionAndOriginalPodsBySelector) {
  std::mutex m;
  std::vector<std::string> targets;
  int session_watches = 0;
  FakeServer server([&](const SeenRequest& r, int fd) {
    std::unique_lock lock(m);
    targets.push_back(r.target);
    bool sessions = r.target.find("lpk.dev%2Froute-for%3Dapi") != std::string::npos;
    if (r.target.find("watch=true") == std::string::npos) {
      lock.unlock();
      FakeServer::send_all(fd, sessions
                                   ? list_of({session_pod("api-lpk-1", "10.0.0.5", "a")})
                                   : list_of({pod("api-1", "10.0.1.1", {{"app", "api"}}, {})}));
      return;
    }
    if (sessions && session_watches++ == 0) {
      lock.unlock();
      auto event = json{{"type", "ADDED"}, {"object", session_pod("api-lpk-2", "10.0.0.6", "b")}};
      FakeServer::send_all(fd,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Connection: close\r\n\r\n" +
                               event.dump() + "\n");
      return;
    }
    lock.unlock();
    FakeServer::hold_until_client_leaves(fd, slack(std::chrono::milliseconds(10000)));
  });
  kube::RestConfig config;
  config.cluster.server = "http://127.0.0.1:" + std::to_string(server.port());
  config.context_name = "fake";
  kube::Client client(config);
  boost::asio::io_context io;
  std::vector<RouteSet> updates;
  PodWatch watch(io.get_executor(), client, "demo", "api", "app=api",
                 [&](RouteSet s) { updates.push_back(s); });
  watch.start();
  ASSERT_TRUE(run_until(io, [&] { return !updates.empty() && updates.back().routes.size() == 2; }));
  const auto& last = updates.back();
  EXPECT_EQ(last.routes[0].value, "a");
  EXPECT_EQ(last.routes[1].value, "b");
  EXPECT_EQ(last.routes[1].pods[0].address().to_string(), "10.0.0.6");
  ASSERT_EQ(last.originals.size(), 1u);
  EXPECT_EQ(last.originals[0].address().to_string(), "10.0.1.1");
  watch.stop();
  std::lock_guard lock(m);
  EXPECT_EQ(targets[0].rfind("/api/v1/namespaces/demo/pods?", 0), 0u) << targets[0];
  bool originals_by_selector = false;
  for (const auto& t : targets)
    originals_by_selector |= t.find("labelSelector=app%3Dapi") != t.npos;
  EXPECT_TRUE(originals_by_selector);
}

}  // namespace
}  // namespace lpk::router
