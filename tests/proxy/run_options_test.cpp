#include "proxy/run_options.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace lpk::proxy {
namespace {

using Args = std::vector<std::string>;

std::string error_of(const Args& args) {
  try {
    parse_run_options(args);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

void expect_one_line_naming(const std::string& message, const std::string& culprit) {
  EXPECT_FALSE(message.empty()) << "expected an error naming " << culprit;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(culprit), std::string::npos) << message;
}

/// A file in a fresh temporary directory, removed with it.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char dir[] = "/tmp/lpk-proxy-test-XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/file";
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
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

}  // namespace
}  // namespace lpk::proxy
