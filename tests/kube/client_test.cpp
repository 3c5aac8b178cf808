// The REST client against scripted servers on loopback: what goes on the wire, retries, bad
// answers, and the watch loop's resume and relist decisions.
#include "kube/client.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "kube/detail/backoff.hpp"
#include "kube/text.hpp"
#include "tests/kube/fake_server.hpp"
#include "tests/slack.hpp"

namespace lpk::kube {
namespace {

using test::FakeServer;
using test::SeenRequest;

RestConfig plain_config(int port, const std::string& prefix = "") {
  RestConfig rc;
  rc.cluster.server = "http://127.0.0.1:" + std::to_string(port) + prefix;
  rc.context_name = "fake";
  rc.source = "test";
  return rc;
}

std::string status_body(int code, const std::string& reason, const std::string& message) {
  return nlohmann::json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
                        {"message", message}, {"reason", reason}, {"code", code}}
      .dump();
}

TEST(WatchBackoff, DoublesToThirtySecondsAndStartsAgainAfterTwoQuietMinutes) {
  using namespace std::chrono_literals;
  detail::WatchBackoff b;
  auto t = detail::WatchBackoff::Clock::time_point{} + 1h;
  std::vector<long> seen;
  for (int i = 0; i < 8; ++i) {
    seen.push_back(b.next(t).count());
    t += 1s;
  }
  EXPECT_EQ(seen, (std::vector<long>{800, 1600, 3200, 6400, 12800, 25600, 30000, 30000}));
  // A watch that ran for two minutes (no backoff meanwhile) and then broke: at once again.
  t += 2min + 1s;
  EXPECT_EQ(b.next(t), 800ms);
  EXPECT_EQ(b.next(t + 1s), 1600ms);
  // Within two minutes of the last backoff, the count goes on.
  EXPECT_EQ(b.next(t + 100s), 3200ms);
  b.reset();
  EXPECT_EQ(b.next(t + 101s), 800ms);
}

TEST(Client, HeadersPrefixBodiesAndPatchTypes) {
  FakeServer server([](const SeenRequest& r, int fd) {
    FakeServer::send_all(fd, FakeServer::response(200, R"({"kind":"ConfigMap"})"));
  });
  RestConfig rc = plain_config(server.port(), "/k8s/cluster-1/");
  rc.user.username = "user";
  rc.user.password = "pw";
  rc.user.impersonate_user = "alice";
  rc.user.impersonate_groups = {"g1", "g2"};
  Client c(rc);
  const std::string cm = resource_path("v1", "demo", "configmaps", "x");
  EXPECT_EQ(c.get(cm)["kind"], "ConfigMap");
  c.list(resource_path("v1", "demo", "configmaps"),
         {.label_selector = "app=web,tier!=db", .field_selector = "metadata.name=x"});
  c.create(resource_path("v1", "demo", "configmaps"), {{"metadata", {{"name", "x"}}}});
  c.replace(cm, {{"data", {{"a", "b"}}}});
  c.patch(cm, {{"data", {{"a", "c"}}}});
  c.patch(cm, {{"data", {{"a", "c"}}}}, PatchType::merge);
  c.patch(cm, nlohmann::json::array({{{"op", "remove"}, {"path", "/data/a"}}}), PatchType::json);
  c.remove(cm);
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 8u);
  EXPECT_EQ(seen[0].target, "/k8s/cluster-1/api/v1/namespaces/demo/configmaps/x");
  EXPECT_EQ(seen[0].header("accept"), "application/json");
  EXPECT_EQ(seen[0].header("authorization"), "Basic " + text::base64_encode("user:pw"));
  EXPECT_EQ(seen[0].header("impersonate-user"), "alice");
  EXPECT_EQ(seen[0].headers["impersonate-group"], (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(seen[1].target,
            "/k8s/cluster-1/api/v1/namespaces/demo/configmaps?labelSelector=app%3Dweb%2Ctier%21%3Ddb"
            "&fieldSelector=metadata.name%3Dx");
  EXPECT_EQ(seen[2].method, "POST");
  EXPECT_EQ(nlohmann::json::parse(seen[2].body)["metadata"]["name"], "x");
  EXPECT_EQ(seen[2].header("content-type"), "application/json");
  EXPECT_EQ(seen[3].method, "PUT");
  EXPECT_EQ(seen[4].method, "PATCH");
  EXPECT_EQ(seen[4].header("content-type"), "application/strategic-merge-patch+json");
  EXPECT_EQ(seen[5].header("content-type"), "application/merge-patch+json");
  EXPECT_EQ(seen[6].header("content-type"), "application/json-patch+json");
  EXPECT_EQ(seen[7].method, "DELETE");
}

TEST(Client, TooManyRequestsHonoursRetryAfterWithABound) {
  std::atomic<int> n{0};
  FakeServer server([&](const SeenRequest&, int fd) {
    if (n++ == 0)
      FakeServer::send_all(fd, FakeServer::response(429, status_body(429, "TooManyRequests", "slow down"),
                                                    {"Retry-After: 1"}));
    else
      FakeServer::send_all(fd, FakeServer::response(200, "{}"));
  });
  Client c(plain_config(server.port()));
  auto t0 = std::chrono::steady_clock::now();
  c.get("/api/v1/namespaces/a/pods/p");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(950));
  EXPECT_EQ(n, 2);

  FakeServer always([&](const SeenRequest&, int fd) {
    FakeServer::send_all(fd, FakeServer::response(429, status_body(429, "TooManyRequests", "busy"),
                                                  {"Retry-After: 0"}));
  });
  Client busy(plain_config(always.port()));
  try {
    busy.get("/api/v1/namespaces/a/pods/p");
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, 429);
    EXPECT_EQ(e.reason, "TooManyRequests");
    EXPECT_NE(std::string(e.what()).find("busy"), std::string::npos);
  }
  EXPECT_EQ(always.requests().size(), 11u);  // the first try and client-go's 10 retries
}

TEST(Client, MalformedBodiesAreErrorsNotCrashes) {
  std::vector<std::string> bodies = {"not json", "[1,2]", "{\"kind\":", std::string("\xff\x00{", 3)};
  std::atomic<size_t> i{0};
  FakeServer server([&](const SeenRequest&, int fd) {
    FakeServer::send_all(fd, FakeServer::response(200, bodies[i++ % bodies.size()]));
  });
  Client c(plain_config(server.port()));
  for (size_t k = 0; k < bodies.size(); ++k) {
    try {
      c.get("/apis/apps/v1/namespaces/demo/deployments/web");
      FAIL() << "no error for body " << k;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.reason, "MalformedResponse");
      EXPECT_NE(std::string(e.what()).find("get deployments.apps in namespace demo"),
                std::string::npos)
          << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
}

TEST(Client, WarningHeadersAreLoggedOnce) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  spdlog::default_logger()->sinks().push_back(sink);
  FakeServer server([](const SeenRequest&, int fd) {
    FakeServer::send_all(
        fd, FakeServer::response(200, "{}", {R"(Warning: 299 - "v1 Endpoints is deprecated in v1.33+")"}));
  });
  Client c(plain_config(server.port()));
  c.get("/api/v1/namespaces/a/endpoints/e");
  c.get("/api/v1/namespaces/a/endpoints/e");
  spdlog::default_logger()->sinks().pop_back();
  auto lines = sink->last_formatted();
  ASSERT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) {
                            return l.find("v1 Endpoints is deprecated in v1.33+") != std::string::npos;
                          }),
            1);
}

TEST(Client, TransportErrorIsOneLine) {
  int port;
  {
    FakeServer gone([](const SeenRequest&, int) {});
    port = gone.port();
  }
  Client c(plain_config(port));
  try {
    c.get("/api/v1/namespaces");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, 0);
    EXPECT_NE(std::string(e.what()).find("cannot reach the API server http://127.0.0.1:"),
              std::string::npos)
        << e.what();
  }
}

/// Waits until the client closes `fd` (its end of a request the server keeps open); bounded.
void hold_until_client_leaves(int fd) {
  FakeServer::hold_until_client_leaves(fd, slack(std::chrono::milliseconds(10000)));
}

/// A flag one thread raises and another waits for (bounded).
class Flag {
 public:
  void raise() {
    std::lock_guard lock(m_);
    up_ = true;
    cv_.notify_all();
  }
  bool wait(std::chrono::milliseconds bound) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, bound, [&] { return up_; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool up_ = false;
};

/// A scripted API: lists answer with a resourceVersion, watches play the next script entry.
struct WatchScript {
  std::mutex m;
  int lists = 0;
  std::vector<std::string> watches;  ///< raw responses, in order
  size_t next = 0;
};

TEST(Client, WatchResumesFromTheLastVersionAndRelistsOnGone) {
  WatchScript s;
  auto ev = [](const std::string& type, const std::string& name, const std::string& rv) {
    return nlohmann::json{{"type", type},
                          {"object", {{"metadata", {{"name", name}, {"resourceVersion", rv}}}}}}
               .dump() +
           "\n";
  };
  auto stream = [](const std::string& lines) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + lines;
  };
  s.watches = {
      stream(ev("ADDED", "a", "11") + ev("BOOKMARK", "", "15")),  // then the server times out
      stream(ev("MODIFIED", "a", "16") + "{not json\n" + ev("ADDED", "never", "17")),  // broken
      stream(R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})" "\n"),
      FakeServer::response(410, status_body(410, "Gone", "too old")),
      stream(ev("DELETED", "a", "30")),
  };
  std::vector<std::string> targets;
  FakeServer server([&](const SeenRequest& r, int fd) {
    std::unique_lock lock(s.m);
    targets.push_back(r.target);
    if (r.target.find("watch=true") == std::string::npos) {
      int n = ++s.lists;
      lock.unlock();
      FakeServer::send_all(
          fd, FakeServer::response(200, R"({"kind":"ConfigMapList","metadata":{"resourceVersion":")" +
                                            std::to_string(n * 10) + R"("},"items":[]})"));
      return;
    }
    if (s.next < s.watches.size()) {
      std::string w = s.watches[s.next++];
      lock.unlock();
      FakeServer::send_all(fd, w);
    } else {
      lock.unlock();
      hold_until_client_leaves(fd);  // an idle watch, until the client stops
    }
  });
  Client c(plain_config(server.port()));
  std::vector<std::string> seen;
  std::vector<std::string> relists;
  std::stop_source stop;
  std::jthread t([&] {
    c.watch("/api/v1/namespaces/demo/configmaps", {.label_selector = "app=x", .timeout_seconds = 5},
            [&](const nlohmann::json& l) { relists.push_back(l["metadata"]["resourceVersion"]); },
            [&](const WatchEvent& e) {
              seen.push_back(e.type + " " + e.object["metadata"]["name"].get<std::string>());
              if (e.type == "DELETED") stop.request_stop();
            },
            stop.get_token());
  });
  t.join();
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED a", "MODIFIED a", "DELETED a"}));
  EXPECT_EQ(relists, (std::vector<std::string>{"10", "20", "30"}));
  auto has = [&](size_t i, const std::string& part) {
    return i < targets.size() && targets[i].find(part) != std::string::npos;
  };
  ASSERT_GE(targets.size(), 8u);
  EXPECT_TRUE(has(0, "labelSelector=app%3Dx")) << targets[0];
  EXPECT_TRUE(has(1, "watch=true&labelSelector=app%3Dx&resourceVersion=10&allowWatchBookmarks=true&timeoutSeconds=5"))
      << targets[1];
  EXPECT_TRUE(has(2, "resourceVersion=15")) << targets[2];  // from the bookmark
  EXPECT_TRUE(has(3, "resourceVersion=16")) << targets[3];  // after the malformed line
  EXPECT_FALSE(has(4, "watch=true")) << targets[4];         // ERROR 410: list again
  EXPECT_FALSE(has(4, "resourceVersion")) << targets[4];
  EXPECT_TRUE(has(5, "resourceVersion=20")) << targets[5];
  EXPECT_FALSE(has(6, "watch=true")) << targets[6];  // HTTP 410: list again
  EXPECT_TRUE(has(7, "resourceVersion=30")) << targets[7];
}

TEST(Client, WatchStopsWithinASecondAndForbiddenThrows) {
  Flag watching;
  FakeServer server([&](const SeenRequest& r, int fd) {
    if (r.target.find("watch=true") == std::string::npos) {
      FakeServer::send_all(fd, FakeServer::response(200, R"({"metadata":{"resourceVersion":"1"}})"));
      return;
    }
    FakeServer::send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    watching.raise();
    hold_until_client_leaves(fd);  // holds the watch open
  });
  Client c(plain_config(server.port()));
  std::stop_source stop;
  std::jthread t([&] {
    c.watch("/api/v1/pods", {}, [](const nlohmann::json&) {}, [](const WatchEvent&) {},
            stop.get_token());
  });
  const bool started = watching.wait(slack(std::chrono::milliseconds(10000)));
  auto asked = std::chrono::steady_clock::now();
  stop.request_stop();
  t.join();
  ASSERT_TRUE(started) << "the client never sent its watch request";
  EXPECT_LT(std::chrono::steady_clock::now() - asked, slack(std::chrono::milliseconds(2000)));

  FakeServer forbidden([](const SeenRequest&, int fd) {
    FakeServer::send_all(fd, FakeServer::response(403, status_body(403, "Forbidden", "pods is forbidden: User \"x\" cannot list resource \"pods\"")));
  });
  Client f(plain_config(forbidden.port()));
  try {
    f.watch("/api/v1/namespaces/demo/pods", {}, [](const nlohmann::json&) {},
            [](const WatchEvent&) {}, std::stop_token{});
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, 403);
    EXPECT_NE(std::string(e.what()).find("not allowed to list pods in namespace demo"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace lpk::kube
