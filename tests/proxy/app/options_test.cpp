#include "proxy/app/options.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

using Args = std::vector<std::string>;

/// The one-line error `parse` gives for `args`, or "" when they parse.
template <class Parse>
std::string error_of(Parse parse, const Args& args) {
  try {
    parse(args);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string error_of(const Args& args) { return error_of(parse_run_options, args); }
std::string connect_error(const Args& args) { return error_of(parse_connect_options, args); }
std::string restore_error(const Args& args) { return error_of(parse_restore_options, args); }

void expect_one_line_naming(const std::string& message, const std::string& culprit) {
  EXPECT_FALSE(message.empty()) << "expected an error naming " << culprit;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(culprit), std::string::npos) << message;
}

/// A file in a fresh temporary directory, removed with it.
class TempFile {
 public:
  explicit TempFile(const std::string& content) { std::ofstream(path_) << content; }
  const std::string& path() const { return path_; }

 private:
  lpk::test::TempDir dir_{"lpk-proxy-test-"};
  std::string path_ = dir_ / "file";
};

TEST(RunOptions, Defaults) {
  auto o = parse_run_options(Args{"--agent", "127.0.0.1:7700"});
  EXPECT_EQ(o.agent, (tunnel::Target{tunnel::Target::Kind::ipv4, "127.0.0.1", 7700}));
  EXPECT_TRUE(o.mappings.empty());
  EXPECT_EQ(o.pool.to_string(), "127.77.0.0/16");
  EXPECT_TRUE(o.secret.empty());
  EXPECT_EQ(o.log_level, "info");
  EXPECT_FALSE(o.inbound.local_port_for(80));
}

TEST(RunOptions, EveryFlag) {
  TempFile map("# two more\nweb:80=web.dev:80\n[::1]:0=[::1]:9000\n");
  TempFile secret("hunter2\n");
  auto o = parse_run_options(Args{"--map", "redis:6379=redis:6379", "--agent", "agent.local:7700",
                                  "--map-file", map.path(), "--map", "127.0.0.1:0=10.0.0.1:5432",
                                  "--pool", "127.88.0.0/24", "--local-port", "3000",
                                  "--local-port", "8080:80", "--secret-file", secret.path(),
                                  "--log-level", "debug"});
  EXPECT_EQ(o.agent.kind, tunnel::Target::Kind::name);
  EXPECT_EQ(o.agent.host, "agent.local");
  ASSERT_EQ(o.mappings.size(), 4u);
  EXPECT_EQ(o.mappings[0].name, "redis");
  EXPECT_EQ(o.mappings[1].name, "web") << "map-file entries keep the command-line order";
  EXPECT_EQ(o.mappings[2].target.port, 9000);
  EXPECT_EQ(o.mappings[3].target.host, "10.0.0.1");
  EXPECT_EQ(o.pool.to_string(), "127.88.0.0/24");
  EXPECT_EQ(o.inbound.local_port_for(80), 8080);
  EXPECT_EQ(o.inbound.local_port_for(22), 3000);
  EXPECT_EQ(o.secret, "hunter2") << "the trailing newline is not part of the secret";
  EXPECT_EQ(o.log_level, "debug");
}

TEST(RunOptions, UnknownFlag) {
  expect_one_line_naming(error_of({"--agent", "a:1", "--bogus", "x"}), "--bogus");
  expect_one_line_naming(error_of({"--agent", "a:1", "--bogus"}), "--bogus");
  expect_one_line_naming(error_of({"--agent", "a:1", "stray"}), "stray");
}

TEST(RunOptions, MissingValue) {
  expect_one_line_naming(error_of({"--agent", "a:1", "--map"}), "--map");
  expect_one_line_naming(error_of({"--agent"}), "--agent");
}

TEST(RunOptions, MissingAgent) {
  expect_one_line_naming(error_of({}), "--agent");
  expect_one_line_naming(error_of({"--map", "redis:1=redis:1"}), "--agent");
}

TEST(RunOptions, BadAgent) {
  expect_one_line_naming(error_of({"--agent", "nohost"}), "nohost");
  expect_one_line_naming(error_of({"--agent", "a:0"}), "'0'");
}

TEST(RunOptions, BadPool) {
  expect_one_line_naming(error_of({"--agent", "a:1", "--pool", "10.0.0.0/8"}), "127.0.0.0/8");
  expect_one_line_naming(error_of({"--agent", "a:1", "--pool", "banana"}), "--pool");
  expect_one_line_naming(error_of({"--agent", "a:1", "--pool", "127.0.0.0"}), "--pool");
  expect_one_line_naming(error_of({"--agent", "a:1", "--pool", "127.0.0.0/33"}), "--pool");
  EXPECT_NE(error_of({"--agent", "a:1", "--pool", "127.0.0.1/32"}), "") << "too small";
}

TEST(RunOptions, BadMapAndFiles) {
  expect_one_line_naming(error_of({"--agent", "a:1", "--map", "x"}), "'x'");
  expect_one_line_naming(error_of({"--agent", "a:1", "--map-file", "/nonexistent/lpk.map"}),
                         "/nonexistent/lpk.map");
  TempFile map("redis:6379=redis:6379\nbroken\n");
  expect_one_line_naming(error_of({"--agent", "a:1", "--map-file", map.path()}),
                         map.path() + ":2:");
  expect_one_line_naming(error_of({"--agent", "a:1", "--secret-file", "/nonexistent/secret"}),
                         "/nonexistent/secret");
  TempFile empty("\n");
  expect_one_line_naming(error_of({"--agent", "a:1", "--secret-file", empty.path()}), "empty");
  expect_one_line_naming(error_of({"--agent", "a:1", "--local-port", "x"}), "'x'");
  expect_one_line_naming(error_of({"--agent", "a:1", "--log-level", "loud"}), "--log-level");
}

TEST(RunOptions, UsageMentionsEveryFlag) {
  for (const char* flag : {"--agent", "--map", "--map-file", "--pool", "--local-port",
                           "--secret-file", "--log-level"}) {
    EXPECT_NE(std::string(kRunUsage).find(flag), std::string::npos) << flag;
  }
}

TEST(RunOptions, AgentPodAndItsKubeconfig) {
  auto o = parse_run_options(Args{"--agent-pod", "demo/api-1", "--kubeconfig", "/k", "--context",
                                  "c", "--dns", "127.0.0.1:0", "--namespace", "demo"});
  ASSERT_TRUE(o.agent_pod);
  EXPECT_EQ(o.agent_pod->pod_namespace, "demo");
  EXPECT_EQ(o.agent_pod->pod, "api-1");
  EXPECT_EQ(o.agent_pod->port, tunnel::kDefaultAgentPort);
  EXPECT_EQ(o.kube.kubeconfig, "/k");
  EXPECT_EQ(o.kube.context, "c");
  ASSERT_TRUE(o.dns);
  EXPECT_EQ(o.dns->port(), 0);
  EXPECT_EQ(o.session_namespace, "demo");
  EXPECT_EQ(parse_agent_pod("ns/p:7000").port, 7000);
  expect_one_line_naming(error_of({"--agent", "a:1", "--agent-pod", "ns/p"}), "exclude");
  expect_one_line_naming(error_of({"--agent", "a:1", "--kubeconfig", "/k"}), "--agent-pod");
  for (const char* bad : {"nopod", "ns/", "/p", "NS/p", "ns/p:0", "ns/p:99999", "ns/p:x"}) {
    expect_one_line_naming(error_of({"--agent-pod", bad}), "--agent-pod");
  }
  expect_one_line_naming(error_of({"--agent", "a:1", "--dns", "localhost:53"}), "--dns");
  expect_one_line_naming(error_of({"--agent", "a:1", "--dns", "127.0.0.1"}), "--dns");
}

TEST(ConnectOptions, DefaultsAndEveryFlag) {
  auto d = parse_connect_options(Args{"--service", "api"});
  ASSERT_EQ(d.services.size(), 1u);
  EXPECT_EQ(d.services[0].name, "api");
  EXPECT_EQ(d.agent_image, "lpk/lpk-agent:dev");
  EXPECT_EQ(d.pool.to_string(), "127.77.0.0/16");
  EXPECT_EQ(d.timeout, std::chrono::seconds(180));
  EXPECT_FALSE(d.dns);
  EXPECT_TRUE(d.command.empty());
  auto o = parse_connect_options(Args{
      "-n", "demo", "--service", "api", "--kubeconfig", "/k", "--context", "c",
      "--also-namespace", "shared", "--local-port", "9000:8080", "--container", "app",
      "--agent-image", "r/agent:1", "--env-file", "/tmp/e", "--dns", "[::1]:5353", "--pool",
      "127.88.0.0/24", "--zone", "corp.local", "--resolv-conf", "/r", "--file-limit", "2048",
      "--timeout", "60", "--resume-grace", "5m", "--log-level", "debug", "--", "./api",
      "--flag"});
  EXPECT_EQ(o.resume_grace, std::chrono::minutes(5));
  EXPECT_EQ(o.kube.namespace_override, "demo");
  EXPECT_EQ(o.kube.kubeconfig, "/k");
  EXPECT_EQ(o.kube.context, "c");
  EXPECT_EQ(o.extra_namespaces, Args{"shared"});
  EXPECT_EQ(o.services.at(0).inbound.local_port_for(8080), 9000);
  EXPECT_EQ(o.container, "app");
  EXPECT_EQ(o.agent_image, "r/agent:1");
  EXPECT_EQ(o.services.at(0).env_file, "/tmp/e");
  ASSERT_TRUE(o.dns);
  EXPECT_TRUE(o.dns->address().is_v6());
  EXPECT_EQ(o.dns->port(), 5353);
  EXPECT_EQ(o.pool.to_string(), "127.88.0.0/24");
  EXPECT_EQ(o.zone, "corp.local");
  EXPECT_EQ(o.resolv_conf, "/r");
  EXPECT_EQ(o.file_limit, 2048u);
  EXPECT_EQ(o.timeout, std::chrono::seconds(60));
  EXPECT_EQ(o.log_level, "debug");
  EXPECT_EQ(o.command, (Args{"./api", "--flag"})) << "what follows -- is the command, flags too";
}

TEST(ConnectOptions, OrphanTimeout) {
  EXPECT_EQ(parse_connect_options(Args{"--service", "api"}).orphan_timeout, std::chrono::minutes(10));
  EXPECT_EQ(parse_connect_options(Args{"--service", "api", "--orphan-timeout", "20s"}).orphan_timeout,
            std::chrono::seconds(20));
  EXPECT_EQ(parse_connect_options(Args{"--service", "api", "--orphan-timeout", "0"}).orphan_timeout,
            std::chrono::seconds(0))
      << "0: no heartbeat, no restorer";
  for (const char* bad : {"5s", "200h", "soon", "-1m", ""}) {
    expect_one_line_naming(connect_error({"--service", "api", "--orphan-timeout", bad}),
                           "--orphan-timeout");
  }
  EXPECT_NE(std::string(kConnectUsage).find("--orphan-timeout"), std::string::npos);
}

TEST(ConnectOptions, SecretFileReplacesTheRandomSessionSecret) {
  EXPECT_TRUE(parse_connect_options(Args{"--service", "api"}).secret.empty())
      << "empty: connect makes a random one";
  TempFile secret("team secret\n");
  EXPECT_EQ(parse_connect_options(Args{"--service", "api", "--secret-file", secret.path()}).secret,
            "team secret");
  expect_one_line_naming(connect_error({"--service", "api", "--secret-file", "/nonexistent/s"}),
                         "/nonexistent/s");
  EXPECT_NE(std::string(kConnectUsage).find("--secret-file"), std::string::npos);
}

TEST(ConnectOptions, BadInputIsOneLineNamingTheFlag) {
  // No --service is an outbound-only session; what only a replaced container can use needs one.
  EXPECT_EQ(connect_error({}), "");
  EXPECT_TRUE(parse_connect_options(Args{"--resolver"}).system_resolver);
  expect_one_line_naming(connect_error({"--local-port", "8080"}), "--local-port");
  expect_one_line_naming(connect_error({"--local-port", "8080:80"}), "--service");
  expect_one_line_naming(connect_error({"--container", "api"}), "--container");
  expect_one_line_naming(connect_error({"--keep-image"}), "--keep-image");
  EXPECT_TRUE(parse_connect_options(Args{"--service", "api", "--keep-image"}).keep_image);
  expect_one_line_naming(connect_error({"--service", "api", "--"}), "--");
  expect_one_line_naming(connect_error({"--service", "api", "--timeout", "0"}), "--timeout");
  expect_one_line_naming(connect_error({"--service", "api", "--timeout", "9999"}), "--timeout");
  expect_one_line_naming(connect_error({"--service", "api", "--file-limit", "-1"}), "--file-limit");
  expect_one_line_naming(connect_error({"--service", "api", "--pool", "10.0.0.0/8"}),
                         "127.0.0.0/8");
  expect_one_line_naming(connect_error({"--service", "api", "--local-port", "a:b"}), "'a'");
  expect_one_line_naming(connect_error({"--service", "api", "--bogus", "1"}), "--bogus");
  expect_one_line_naming(connect_error({"--service"}), "--service");
  for (const char* flag : {"--service", "--local-port", "--container", "--agent-image",
                           "--env-file", "--also-namespace", "--dns", "--pool", "--timeout"}) {
    EXPECT_NE(std::string(kConnectUsage).find(flag), std::string::npos) << flag;
  }
}

TEST(ConnectOptions, EnvSkipFileOutputAndLogFormat) {
  auto o = parse_connect_options(Args{"--env", "A=${service:redis}:6379", "--env", "B=", "--json",
                                      "--log-format", "json", "--skip-file", "/var/run/secrets"});
  EXPECT_EQ(o.env, (std::vector<std::pair<std::string, std::string>>{
                       {"A", "${service:redis}:6379"}, {"B", ""}}));
  EXPECT_TRUE(o.json_output);
  EXPECT_TRUE(o.json_logs);
  EXPECT_EQ(o.skip_files, Args{"/var/run/secrets"});
  EXPECT_FALSE(parse_connect_options(Args{"--json", "--output", "text"}).json_output);
  expect_one_line_naming(connect_error({"--env", "1A=x"}), "--env");
  expect_one_line_naming(connect_error({"--env", "A=${service:}"}), "${service:}");
  expect_one_line_naming(connect_error({"--output", "yaml"}), "--output");
  expect_one_line_naming(connect_error({"--log-format", "xml"}), "--log-format");
  expect_one_line_naming(connect_error({"--skip-file", "etc/x"}), "--skip-file");
  expect_one_line_naming(connect_error({"-n", "Demo"}), "-n");
  expect_one_line_naming(connect_error({"--also-namespace", "a/b"}), "--also-namespace");
  EXPECT_TRUE(parse_run_options(Args{"--agent", "127.0.0.1:1", "--log-format", "json"}).json_logs);
  expect_one_line_naming(error_of(Args{"--agent", "127.0.0.1:1", "--log-format", "j"}),
                         "--log-format");
  EXPECT_TRUE(parse_doctor_options(Args{"--output", "json"}).json);
}

TEST(ConnectOptions, SeveralServicesTakeTheirOwnPortsCommandsAndEnvFiles) {
  auto o = parse_connect_options(Args{
      "--local-port", "worker:9001:8080", "--service", "api", "--service", "worker",
      "--local-port", "api:9000:8080", "--run", "api=./api --port 9000", "--run",
      "worker=./worker a=b", "--env-file", "worker=/tmp/w.env", "--env-file", "api=/tmp/a.env"});
  ASSERT_EQ(o.services.size(), 2u);
  const auto& api = o.services[0];
  const auto& worker = o.services[1];
  EXPECT_EQ(api.name, "api") << "in the order of --service";
  EXPECT_EQ(api.inbound.local_port_for(8080), 9000);
  EXPECT_EQ(worker.inbound.local_port_for(8080), 9001) << "given before its --service";
  EXPECT_EQ(api.run, "./api --port 9000");
  EXPECT_EQ(worker.run, "./worker a=b") << "split at the first '='";
  EXPECT_EQ(api.env_file, "/tmp/a.env");
  EXPECT_EQ(worker.env_file, "/tmp/w.env");
  // One service: the prefix may be left out, as before.
  auto one = parse_connect_options(Args{"--service", "api", "--local-port", "9000:8080",
                                        "--run", "api=./api"});
  EXPECT_EQ(one.services.at(0).inbound.local_port_for(8080), 9000);
  EXPECT_EQ(one.services.at(0).run, "./api");
  EXPECT_EQ(parse_connect_options(Args{"--service", "api", "--local-port", "api:7000"})
                .services.at(0).inbound.local_port_for(80),
            7000);
}

TEST(ConnectOptions, SeveralServicesRefuseAmbiguityInOneLine) {
  const Args two{"--service", "api", "--service", "worker"};
  auto with = [&](std::initializer_list<std::string> more) {
    Args args = two;
    args.insert(args.end(), more);
    return connect_error(args);
  };
  expect_one_line_naming(connect_error({"--service", "api", "--service", "api"}), "twice");
  expect_one_line_naming(with({"--local-port", "9000:8080"}), "api:9000:8080");
  expect_one_line_naming(with({"--local-port", "web:9000:8080"}), "'web'");
  expect_one_line_naming(with({"--local-port", "api:9000:8080", "--local-port", "worker:9000:80"}),
                         "local port 9000");
  expect_one_line_naming(with({"--local-port", "api:9000", "--local-port", "worker:9000:80"}),
                         "local port 9000");
  expect_one_line_naming(with({"--run", "./api"}), "SERVICE='COMMAND LINE'");
  expect_one_line_naming(with({"--run", "web=./web"}), "--run");
  expect_one_line_naming(with({"--run", "api="}), "--run");
  expect_one_line_naming(with({"--run", "api=a", "--run", "api=b"}), "twice");
  expect_one_line_naming(with({"--run", "api=a", "--", "./b"}), "exclude");
  expect_one_line_naming(with({"--env-file", "/tmp/e"}), "--env-file");
  expect_one_line_naming(with({"--container", "app"}), "--container");
  expect_one_line_naming(connect_error({"--run", "api=./api"}), "--run");
  EXPECT_EQ(with({"--", "./api"}), "") << "one command, with the first service's environment";
  for (const char* flag : {"--run", "[SERVICE:]LOCAL:REMOTE", "[SERVICE=]PATH"}) {
    EXPECT_NE(std::string(kConnectUsage).find(flag), std::string::npos) << flag;
  }
}

TEST(RestoreOptions, SwitchesAndValues) {
  auto o = parse_restore_options(Args{"--all", "-A", "--timeout", "30", "-n", "demo"});
  EXPECT_TRUE(o.all);
  EXPECT_TRUE(o.all_namespaces);
  EXPECT_EQ(o.timeout, std::chrono::seconds(30));
  EXPECT_EQ(o.kube.namespace_override, "demo");
  EXPECT_FALSE(parse_restore_options(Args{}).all);
  expect_one_line_naming(restore_error({"-A"}), "--all");
  expect_one_line_naming(restore_error({"--timeout"}), "--timeout");
  expect_one_line_naming(restore_error({"--forceful"}), "--forceful");
  EXPECT_TRUE(parse_restore_options(Args{"--force"}).force);
  EXPECT_FALSE(parse_restore_options(Args{"--all"}).force);
}

}  // namespace
}  // namespace lpk::proxy
