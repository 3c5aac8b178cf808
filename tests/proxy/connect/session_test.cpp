// A whole ConnectSession (ctest entry proxy_connect_session_kubesim): the cluster is lpk-kubesim
// --no-runtime, the takeover is the real one, and the agent pods' tunnels reach two in-process
// lpk::agent::Agents over plain TCP (the AgentLinks seam) instead of port-forwards to processes
// kubesim does not run. Checked: the stdout lines, names in the stub DNS, `status` and `env` over
// the control socket, the environment and files imported from the agent, and that the child's
// exit ends the session with its code, with no signal.
#include "proxy/connect/session.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <thread>

#include "agent/agent.hpp"
#include "proxy/control/client.hpp"
#include "proxy/control/session_paths.hpp"
#include "tests/dns/test_util.hpp"
#include "tests/proxy/takeover/kubesim_cluster.hpp"
#include "tests/proxy/test_pool.hpp"

namespace lpk::proxy {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using nlohmann::json;

/// Sends this process's stdout (fd 1, which children inherit) into a pipe, line by line, for
/// the life of the object; each line is echoed on stderr so the log still shows it.
class StdoutLines {
 public:
  StdoutLines() {
    std::fflush(stdout);
    saved_ = ::dup(STDOUT_FILENO);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] { read(fd); });
  }
  ~StdoutLines() {
    std::fflush(stdout);
    ::dup2(saved_, STDOUT_FILENO);  // the pipe's last writer (children have exited)
    ::close(saved_);
    reader_.join();
  }

  /// Waits for a line matching `pattern`; its groups go to `match`.
  bool wait_for(const std::string& pattern, std::smatch* match = nullptr,
                std::chrono::seconds limit = 60s) {
    const std::regex re(pattern);
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] {
      for (const auto& line : lines_) {
        std::smatch m;
        if (std::regex_search(line, m, re)) {
          if (match) *match = m;
          return true;
        }
      }
      return false;
    });
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  void read(int fd) {
    std::string partial;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      partial.append(buffer, std::size_t(n));
      for (auto nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n')) {
        std::string line = partial.substr(0, nl);
        partial.erase(0, nl + 1);
        std::fprintf(stderr, "stdout| %s\n", line.c_str());
        std::lock_guard lock(mutex_);
        lines_.push_back(std::move(line));
        changed_.notify_all();
      }
    }
    ::close(fd);
  }

  int saved_ = -1;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
  std::thread reader_;
};

/// Two lpk-agents on loopback, on an io thread of their own.
class Agents {
 public:
  Agents(int count, const agent::ServiceOptions& services) {
    for (int i = 0; i < count; ++i) {
      agent::AgentOptions options;
      options.tunnel_endpoint = {asio::ip::make_address("127.0.0.1"), 0};
      options.services = services;
      agents_.push_back(std::make_unique<agent::Agent>(io_.get_executor(), options));
      std::vector<std::string> errors;
      agents_.back()->bind(errors).value();
      agents_.back()->start();
    }
    thread_ = std::thread([this] {
      io_.run();
      ran_out_.set_value();
    });
  }
  ~Agents() {
    asio::post(io_, [this] {
      for (auto& a : agents_) a->stop();
    });
    guard_.reset();
    // Stopped agents end their sessions; give them a bounded time to finish.
    if (ran_out_future_.wait_for(5s) != std::future_status::ready) io_.stop();
    thread_.join();
  }
  std::uint16_t port(std::size_t i) const { return agents_.at(i)->tunnel_endpoint().port(); }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::vector<std::unique_ptr<agent::Agent>> agents_;
  std::promise<void> ran_out_;
  std::future<void> ran_out_future_ = ran_out_.get_future();
  std::thread thread_;
};

class ConnectSessionKubesim : public test::KubesimCluster {};

TEST_F(ConnectSessionKubesim, ServesTheNamespaceImportsTheEnvironmentAndEndsWithTheChild) {
  // The cluster: the service connected to, and one more in its namespace.
  deploy("Deployment", "api", 2, 8080, 18080);
  create(service("db", "db", 15432));
  const auto deployment_before =
      client_->get(kube::resource_path("apps/v1", ns_, "deployments", "api"));
  console::Progress progress(false);
  Takeover takeover(*client_, progress);
  TakeoverOptions wanted;
  wanted.service = "api";
  wanted.ns = ns_;
  wanted.rollout_timeout = 60s;
  const std::string session_id = "5e55a0a1";
  auto target = takeover.locate(wanted);
  takeover.install_agent(target, wanted, SessionOwner::current(session_id));
  auto agent_pods = takeover.wait_for_agents(target, wanted);
  ASSERT_EQ(agent_pods.size(), 2u);

  // This machine: private runtime and temporary directories; what the agents will report.
  env_.set("XDG_RUNTIME_DIR", dir_ / "run");
  env_.set("TMPDIR", dir_ / "tmp");
  std::filesystem::create_directories(dir_ / "tmp");
  env_.set("POD_NAME", agent_pods[0]["metadata"]["name"].get<std::string>());
  env_.set("API_SERVICE_HOST", "10.96.0.50");  // as the kubelet set it in the container
  env_.set("API_SERVICE_PORT", "18080");
  env_.set("LPK_TEST_SECRET", "from the container");
  dir_.write("config/app.yaml", "greeting: hello\n");
  agent::ServiceOptions services;
  services.env.mounts = {dir_ / "config"};
  services.env.container = "app";
  Agents agents(2, services);

  const auto fifo = dir_ / "go";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  SessionPlan plan;
  plan.services.push_back({"api", target, agent_pods, {}, {}, {}});
  plan.ns = ns_;
  plan.session_id = session_id;
  plan.pool = test::process_pool();
  plan.dns = asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
  plan.command = {"/bin/sh", "-c",
                  "echo \"child: $API_SERVICE_HOST $LPK_SESSION $LPK_TEST_SECRET\"; "
                  "read line < \"$0\"; exit 7",
                  fifo};
  std::map<std::string, std::size_t> agent_of;
  for (std::size_t i = 0; i < agent_pods.size(); ++i) {
    agent_of[agent_pods[i]["metadata"]["name"].get<std::string>()] = i;
  }
  auto links = [&](const std::string& pod) {
    return tunnel::tcp_link_dialer(
        tunnel::Target{tunnel::Target::Kind::ipv4, "127.0.0.1", agents.port(agent_of.at(pod))});
  };

  int code = -1;
  {
    StdoutLines out;
    ConnectSession session(plan, *client_, links);
    std::exception_ptr error;
    std::thread running([&] {
      try {
        code = session.run();
      } catch (...) {
        error = std::current_exception();
      }
    });
    // The fd stays open (O_RDWR never blocks on a FIFO) until the child has read the line.
    const int go = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
    std::smatch m;
    const bool ready = out.wait_for("^ready$");
    EXPECT_TRUE(ready) << "no ready line";
    if (ready) {
      ASSERT_TRUE(out.wait_for(R"(^service api\.)" + ns_ + R"( -> (\S+) ports \[18080\]$)", &m));
      const std::string address = m[1];
      EXPECT_TRUE(out.wait_for(R"(^service db\.)" + ns_ + R"( -> \S+ ports \[15432\]$)"));
      EXPECT_TRUE(out.wait_for("^tunnels: 2 of 2 agents connected$"));
      for (const auto& pod : agent_of) {
        EXPECT_TRUE(out.wait_for("^tunnel up: pod " + pod.first + " \\(session [0-9a-f]+\\)$"));
      }
      EXPECT_TRUE(
          out.wait_for("^inbound: deployment " + ns_ + "/api port 8080 -> localhost:8080$"));
      ASSERT_TRUE(out.wait_for(
          R"(^environment: [0-9]+ variables from pod (\S+) \(([0-9]+) service links point at lpk\), 1 files under (\S+)$)",
          &m));
      EXPECT_EQ(m[1], agent_pods[0]["metadata"]["name"].get<std::string>());
      EXPECT_EQ(m[2], "2");  // API_SERVICE_HOST and API_SERVICE_PORT
      const std::string files_root = m[3];
      EXPECT_EQ(files_root, (session_dir(session_id) / "files").string());
      std::ifstream imported(files_root + dir_.path() + "/config/app.yaml");
      EXPECT_EQ(std::string(std::istreambuf_iterator<char>(imported), {}), "greeting: hello\n");
      // The child got the imported environment, its service links pointing at lpk.
      EXPECT_TRUE(out.wait_for("^child: " + address + " " + session_id + " from the container$"));

      // The stub DNS answers the namespace's names.
      ASSERT_TRUE(out.wait_for(R"(^dns 127\.0\.0\.1:([0-9]+)$)", &m));
      const asio::ip::udp::endpoint dns(asio::ip::make_address("127.0.0.1"),
                                        std::uint16_t(std::stoi(m[1])));
      auto answer = dns::test::udp_exchange(
          dns, dns::test::make_query("api." + ns_ + ".svc.cluster.local", LDNS_RR_TYPE_A));
      ASSERT_TRUE(answer);
      EXPECT_EQ(dns::test::Response(*answer).rdata(), std::vector<std::string>{address});

      // The control socket.
      const auto socket = control_socket_path(session_id);
      EXPECT_EQ(socket.parent_path(), runtime_dir());
      auto status = control_request(socket, "status");
      ASSERT_TRUE(status) << status.error().message;
      ASSERT_TRUE(status->value("ok", false)) << status->dump();
      const auto& result = (*status)["result"];
      EXPECT_EQ(result["service"], "api");
      EXPECT_EQ(result["namespace"], ns_);
      EXPECT_EQ(result["workload"], "deployment " + ns_ + "/api");
      EXPECT_EQ(result["container"], "app");
      EXPECT_EQ(result["pid"], ::getpid());
      EXPECT_TRUE(result["child"]["pid"].is_number_integer()) << result["child"];
      EXPECT_EQ(result["dns"]["address"], "127.0.0.1:" + std::string(m[1]));
      ASSERT_EQ(result["tunnels"].size(), 2u);
      for (const auto& t : result["tunnels"]) {
        EXPECT_EQ(t["state"], "ready") << t;
        EXPECT_TRUE(agent_of.count(t["pod"].get<std::string>())) << t;
      }
      std::vector<std::string> listed;
      for (const auto& s : result["services"]) listed.push_back(s["name"].get<std::string>());
      EXPECT_EQ(listed, (std::vector<std::string>{"api", "db"}));
      auto env = control_request(socket, "env");
      ASSERT_TRUE(env) << env.error().message;
      EXPECT_EQ((*env)["result"]["env"]["API_SERVICE_HOST"], address);
      EXPECT_EQ((*env)["result"]["env"]["LPK_TEST_SECRET"], "from the container");
      EXPECT_EQ((*env)["result"]["from"], agent_pods[0]["metadata"]["name"]);
    }
    // Let the child exit: the session ends with its code.
    if (ready) {
      EXPECT_EQ(::write(go, "go\n", 3), 3);
    } else {
      ::kill(::getpid(), SIGTERM);  // the session's own handler ends it (no child yet)
    }
    running.join();
    ::close(go);
    if (error) std::rethrow_exception(error);
    if (ready) {
      EXPECT_TRUE(out.wait_for("^command exited with 7$"));
    }
  }
  EXPECT_EQ(code, 7);
  EXPECT_FALSE(std::filesystem::exists(control_socket_path(session_id))) << "socket left behind";

  // The cluster as it was.
  ASSERT_TRUE(takeover.restore(target.workload, 60s));
  EXPECT_EQ(client_->get(target.workload.path())["spec"], deployment_before["spec"]);
}

// A SIGINT/SIGTERM that came after the rollout but before the session took the signals over
// only set the flag: the session must end at once, not go on to `ready` and run the command.
TEST(ConnectSession, ASignalBeforeItStartsEndsItAtOnce) {
  kube::RestConfig config;
  config.cluster.server = "https://127.0.0.1:1";  // never called
  kube::Client client(config);
  std::atomic<bool> interrupted{true};
  SessionPlan plan;
  plan.services.push_back({});
  plan.services[0].service = "api";
  plan.ns = "demo";
  plan.session_id = "519a1000";
  plan.pool = test::process_pool();
  plan.command = {"/bin/sh", "-c", "echo the command ran; exit 9"};
  plan.interrupted = &interrupted;
  StdoutLines out;
  ConnectSession session(plan, client);
  EXPECT_EQ(session.run(), 0);
  EXPECT_FALSE(out.wait_for("^(ready$|dns )", nullptr, 1s)) << "it served after the signal";
}

}  // namespace
}  // namespace lpk::proxy
