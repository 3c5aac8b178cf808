#include "proxy/control/server.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdlib>
#include <cstring>
#include <future>
#include <sstream>
#include <thread>

#include "proxy/control/client.hpp"
#include "proxy/control/session_paths.hpp"
#include "tests/scoped_env.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

using lpk::test::ScopedEnv;

json status_result() {
  return {
      {"service", "api"},
      {"namespace", "demo"},
      {"pid", 4242},
      {"dns", {{"address", "127.0.0.1:5353"}}},
      {"services",
       {{{"name", "redis"}, {"namespace", "demo"}, {"address", "127.77.0.12"}, {"ports", {6379}}},
        {{"name", "web"},
         {"namespace", "demo"},
         {"address", "127.77.0.13"},
         {"ports", {80, 443}}}}},
      {"tunnels",
       {{{"pod", "api-7d9f-abcde"},
         {"state", "ready"},
         {"rtt_ms", 0.42},
         {"streams", 3},
         {"streams_total", 120}}}}};
}

// A session's control server on its own io thread; the test thread is the blocking client.
class Session {
 public:
  Session(const std::string& id, json status = status_result())
      : server_(io_.get_executor(), id, control_socket_path(id)) {
    server_.handle("status", [status] { return status; });
    server_.handle("env", [] { return json{{"env", {{"A", "1"}, {"B", "two words"}}}}; });
    server_.handle("diagnostics", [] { return json{{"tunnels", json::array()}, {"x", 1}}; });
    server_.handle("broken", []() -> json { throw std::runtime_error("handler failed"); });
  }
  /// Starts serving on its own thread; the problem's sentence, or "" when it started.
  std::string start() {
    auto started = server_.start();
    if (!started) return started.error().message;
    thread_ = std::thread([this] { io_.run_for(30s); });
    return {};
  }
  void stop() {
    if (!thread_.joinable()) return;
    std::promise<void> stopped;
    asio::post(io_, [&] {
      server_.stop();
      io_.stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    thread_.join();
  }
  ~Session() { stop(); }
  ControlServer& server() { return server_; }

 private:
  asio::io_context io_;
  ControlServer server_;
  std::thread thread_;
};

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_ = std::make_unique<ScopedEnv>("XDG_RUNTIME_DIR", root_.c_str());
    session_var_ = std::make_unique<ScopedEnv>("LPK_SESSION", std::nullopt);
  }
  // Leaves a socket file with nobody listening, as a killed session does.
  static void make_stale_socket(const fs::path& path) {
    fs::create_directories(path.parent_path());
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    close(fd);
    ASSERT_TRUE(fs::exists(path));
  }
  static int command(const std::vector<std::string>& args, std::string& out, std::string& err) {
    std::ostringstream o, e;
    int code = run_control_command(args, o, e);
    out = o.str();
    err = e.str();
    return code;
  }
  lpk::test::TempDir tmp_{"lpk-control-test-"};
  const fs::path root_{tmp_.path()};
  std::unique_ptr<ScopedEnv> runtime_, session_var_;
};

TEST_F(ControlTest, RoundTripOfEveryCommand) {
  Session session("s1");
  ASSERT_EQ(session.start(), "");
  auto path = root_ / "lpk" / "s1.sock";
  EXPECT_EQ(session.server().socket_path(), path);
  struct stat st {};
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto reply = control_request(path, "status");
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ((*reply)["ok"], true);
  EXPECT_EQ((*reply)["session"], "s1");
  EXPECT_EQ((*reply)["result"], status_result());

  auto unknown = control_request(path, "nope");
  ASSERT_TRUE(unknown) << unknown.error().message;
  EXPECT_EQ((*unknown)["ok"], false);
  EXPECT_NE((*unknown)["error"].get<std::string>().find("unknown command \"nope\""),
            std::string::npos);
  auto broken = control_request(path, "broken");
  ASSERT_TRUE(broken) << broken.error().message;
  EXPECT_EQ((*broken)["error"], "handler failed");

  session.stop();
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(ControlTest, HumanAndJsonOutput) {
  Session session("s1");
  std::string out, err;
  ASSERT_EQ(session.start(), "");

  ASSERT_EQ(command({"status"}, out, err), 0) << err;
  EXPECT_NE(out.find("session s1"), std::string::npos) << out;
  EXPECT_NE(out.find("service api in namespace demo"), std::string::npos) << out;
  EXPECT_NE(out.find("DNS 127.0.0.1:5353"), std::string::npos) << out;
  EXPECT_NE(out.find("redis.demo  127.77.0.12  6379"), std::string::npos) << out;
  EXPECT_NE(out.find("web.demo    127.77.0.13  80,443"), std::string::npos) << out;
  EXPECT_NE(out.find("api-7d9f-abcde  ready  rtt 0.42 ms  streams 3 open, 120 total"),
            std::string::npos)
      << out;

  ASSERT_EQ(command({"env"}, out, err), 0) << err;
  EXPECT_EQ(out, "A=1\nB=two words\n");
  ASSERT_EQ(command({"env", "--json", "--session", "s1"}, out, err), 0) << err;
  EXPECT_EQ(json::parse(out), json({{"env", {{"A", "1"}, {"B", "two words"}}}}));
  ASSERT_EQ(command({"diagnostics", "--session=s1"}, out, err), 0) << err;
  EXPECT_EQ(json::parse(out), json({{"tunnels", json::array()}, {"x", 1}}));
  EXPECT_NE(out.find("\n  \"tunnels\""), std::string::npos) << "not indented: " << out;
}

TEST_F(ControlTest, BadRequestsGetAnErrorReply) {
  Session session("s1");
  ASSERT_EQ(session.start(), "");
  for (std::string request : {"not json\n", "[1,2]\n", "{\"command\":3}\n"}) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, control_socket_path("s1").c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string reply;
    char buffer[512];
    while (ssize_t n = read(fd, buffer, sizeof buffer)) {
      if (n < 0) break;
      reply.append(buffer, static_cast<std::size_t>(n));
    }
    close(fd);
    auto parsed = json::parse(reply);
    EXPECT_EQ(parsed["ok"], false) << request;
    EXPECT_NE(parsed["error"].get<std::string>().find("one JSON line"), std::string::npos);
  }
}

TEST_F(ControlTest, StaleSocketIsReplacedByTheNextStart) {
  make_stale_socket(control_socket_path("s1"));
  Session session("s1");
  ASSERT_EQ(session.start(), "");
  auto reply = control_request(control_socket_path("s1"), "status");
  EXPECT_TRUE(reply) << reply.error().message;
}

TEST_F(ControlTest, ALiveSessionIsNotTakenOver) {
  Session first("s1");
  ASSERT_EQ(first.start(), "");
  Session second("s1");
  auto problem = second.start();
  EXPECT_NE(problem.find("already answers"), std::string::npos) << problem;
  auto reply = control_request(control_socket_path("s1"), "status");
  EXPECT_TRUE(reply) << reply.error().message;
}

TEST_F(ControlTest, ClientsRemoveStaleSocketsAndFindTheLiveOne) {
  make_stale_socket(control_socket_path("dead"));
  Session live("live");
  std::string out, err;
  ASSERT_EQ(live.start(), "");
  EXPECT_EQ(live_sessions(runtime_dir()), std::vector<std::string>{"live"});
  EXPECT_FALSE(fs::exists(control_socket_path("dead")));
  ASSERT_EQ(command({"status", "--json"}, out, err), 0) << err;
  EXPECT_EQ(json::parse(out), status_result());
}

TEST(PrintStatus, ATunnelWhoseLinkDroppedSaysHowOftenAndWhy) {
  json status = status_result();
  status["tunnels"][0]["drops"] = 2;
  status["tunnels"][0]["last_drop"] = "the link went silent (dead-link timeout)";
  json steady = status_result();
  steady["tunnels"][0]["drops"] = 0;
  std::ostringstream dropped, calm;
  print_status(status, dropped);
  print_status(steady, calm);
  EXPECT_NE(dropped.str().find("link dropped 2x, last: the link went silent (dead-link timeout)"),
            std::string::npos)
      << dropped.str();
  EXPECT_EQ(calm.str().find("dropped"), std::string::npos) << calm.str();
}

TEST_F(ControlTest, NoSessionSaysHowToStartOne) {
  make_stale_socket(control_socket_path("dead"));
  std::string out, err;
  EXPECT_EQ(command({"status"}, out, err), 1);
  EXPECT_EQ(err,
            "lpk-proxy: no lpk session is running; start one with lpk-proxy connect --service "
            "NAME [-- COMMAND]\n");
  EXPECT_FALSE(fs::exists(control_socket_path("dead")));
  EXPECT_EQ(command({"env", "--session", "gone"}, out, err), 1);
  EXPECT_NE(err.find("no lpk session gone is running"), std::string::npos) << err;
}

TEST_F(ControlTest, SeveralSessionsAreListedAndOneIsChosen) {
  Session a("aaa");
  json other = status_result();
  other["service"] = "web";
  Session b("bbb", other);
  std::string out, err;
  ASSERT_EQ(a.start(), "");
  ASSERT_EQ(b.start(), "");
  EXPECT_EQ(command({"status"}, out, err), 1);
  EXPECT_NE(err.find("2 lpk sessions are running; choose one with --session ID"), std::string::npos)
      << err;
  EXPECT_NE(err.find("  aaa (api in demo)\n"), std::string::npos) << err;
  EXPECT_NE(err.find("  bbb (web in demo)\n"), std::string::npos) << err;
  ASSERT_EQ(command({"status", "--session", "bbb", "--json"}, out, err), 0) << err;
  EXPECT_EQ(json::parse(out)["service"], "web");
  // Inside a session's child, LPK_SESSION picks it.
  ScopedEnv inside("LPK_SESSION", "aaa");
  ASSERT_EQ(command({"status", "--json"}, out, err), 0) << err;
  EXPECT_EQ(json::parse(out)["service"], "api");
}

TEST_F(ControlTest, BadFlagsAreOneLineAndExit2) {
  std::string out, err;
  for (std::vector<std::string> args : {std::vector<std::string>{},
                                        {"stats"},
                                        {"status", "--jsn"},
                                        {"env", "--session"},
                                        {"env", "--session", "../x"}}) {
    EXPECT_EQ(command(args, out, err), 2);
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_EQ(err.rfind("lpk-proxy: ", 0), 0u) << err;
  }
  EXPECT_EQ(command({"status", "--help"}, out, err), 0);
  EXPECT_NE(out.find("usage: lpk-proxy status"), std::string::npos);
}

}  // namespace
}  // namespace lpk::proxy
