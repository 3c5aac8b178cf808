#include "proxy/connect/environment.hpp"

#include "proxy/connect/file_sync.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

namespace fs = std::filesystem;
using boost::asio::ip::make_address;
using Vars = std::vector<std::pair<std::string, std::string>>;

// The kubelet's own output for one service (k/k pkg/kubelet/envvars FromServices), k8s-notes §3.8.
TEST(ServiceLinkVariables, OneUnnamedPortWithADashInTheName) {
  LinkedService s{"redis-main", make_address("127.77.0.12"), {{"", 6379, "TCP"}}};
  Vars expected = {
      {"REDIS_MAIN_SERVICE_HOST", "127.77.0.12"},
      {"REDIS_MAIN_SERVICE_PORT", "6379"},
      {"REDIS_MAIN_PORT", "tcp://127.77.0.12:6379"},
      {"REDIS_MAIN_PORT_6379_TCP", "tcp://127.77.0.12:6379"},
      {"REDIS_MAIN_PORT_6379_TCP_PROTO", "tcp"},
      {"REDIS_MAIN_PORT_6379_TCP_PORT", "6379"},
      {"REDIS_MAIN_PORT_6379_TCP_ADDR", "127.77.0.12"},
  };
  EXPECT_EQ(service_link_variables(s), expected);
}

TEST(ServiceLinkVariables, SeveralNamedPortsAndProtocols) {
  LinkedService s{"api",
                  make_address("127.77.0.3"),
                  {{"http", 80, "TCP"}, {"grpc-web", 9090, "TCP"}, {"stats", 8125, "UDP"}}};
  Vars expected = {
      {"API_SERVICE_HOST", "127.77.0.3"},
      {"API_SERVICE_PORT", "80"},
      {"API_SERVICE_PORT_HTTP", "80"},
      {"API_SERVICE_PORT_GRPC_WEB", "9090"},
      {"API_SERVICE_PORT_STATS", "8125"},
      {"API_PORT", "tcp://127.77.0.3:80"},
      {"API_PORT_80_TCP", "tcp://127.77.0.3:80"},
      {"API_PORT_80_TCP_PROTO", "tcp"},
      {"API_PORT_80_TCP_PORT", "80"},
      {"API_PORT_80_TCP_ADDR", "127.77.0.3"},
      {"API_PORT_9090_TCP", "tcp://127.77.0.3:9090"},
      {"API_PORT_9090_TCP_PROTO", "tcp"},
      {"API_PORT_9090_TCP_PORT", "9090"},
      {"API_PORT_9090_TCP_ADDR", "127.77.0.3"},
      {"API_PORT_8125_UDP", "udp://127.77.0.3:8125"},
      {"API_PORT_8125_UDP_PROTO", "udp"},
      {"API_PORT_8125_UDP_PORT", "8125"},
      {"API_PORT_8125_UDP_ADDR", "127.77.0.3"},
  };
  EXPECT_EQ(service_link_variables(s), expected);
}

TEST(ServiceLinkVariables, Ipv6IsBracketedOnlyInUrls) {
  LinkedService s{"kubernetes", make_address("::1"), {{"https", 443, ""}}};
  Vars expected = {
      {"KUBERNETES_SERVICE_HOST", "::1"},
      {"KUBERNETES_SERVICE_PORT", "443"},
      {"KUBERNETES_SERVICE_PORT_HTTPS", "443"},
      {"KUBERNETES_PORT", "tcp://[::1]:443"},
      {"KUBERNETES_PORT_443_TCP", "tcp://[::1]:443"},
      {"KUBERNETES_PORT_443_TCP_PROTO", "tcp"},
      {"KUBERNETES_PORT_443_TCP_PORT", "443"},
      {"KUBERNETES_PORT_443_TCP_ADDR", "::1"},
  };
  EXPECT_EQ(service_link_variables(s), expected);
  EXPECT_TRUE(service_link_variables({"empty", make_address("::1"), {}}).empty());
}

// The environment of a pod in namespace demo with services api (two ports), redis, and
// default/kubernetes, as the kubelet writes it; plus the app's own variables.
EnvMap demo_pod_env() {
  return {
      {"API_SERVICE_HOST", "10.96.0.20"},
      {"API_SERVICE_PORT", "80"},
      {"API_SERVICE_PORT_HTTP", "80"},
      {"API_SERVICE_PORT_METRICS", "9100"},
      {"API_PORT", "tcp://10.96.0.20:80"},
      {"API_PORT_80_TCP", "tcp://10.96.0.20:80"},
      {"API_PORT_80_TCP_PROTO", "tcp"},
      {"API_PORT_80_TCP_PORT", "80"},
      {"API_PORT_80_TCP_ADDR", "10.96.0.20"},
      {"API_PORT_9100_TCP", "tcp://10.96.0.20:9100"},
      {"API_PORT_9100_TCP_PROTO", "tcp"},
      {"API_PORT_9100_TCP_PORT", "9100"},
      {"API_PORT_9100_TCP_ADDR", "10.96.0.20"},
      {"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
      {"KUBERNETES_SERVICE_PORT", "443"},
      {"KUBERNETES_SERVICE_PORT_HTTPS", "443"},
      {"KUBERNETES_PORT", "tcp://10.96.0.1:443"},
      {"KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"},
      {"KUBERNETES_PORT_443_TCP_PROTO", "tcp"},
      {"KUBERNETES_PORT_443_TCP_PORT", "443"},
      {"KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"},
      // Look-alikes that are the app's own: never touched.
      {"API_SERVICE_PORT_EXTRA", "1234"},  // api has no port named extra
      {"API_PORT_80_TCP_URL", "http://10.96.0.20"},
      {"API_SERVICE_HOSTNAME", "api.example"},
      {"MY_APP_PORT", "8080"},
      {"REDIS_URL", "redis://10.96.0.30:6379"},
      {"DATABASE_PASSWORD", "s3cr3t"},
  };
}

TEST(RewriteServiceLinks, MappedServicesPointAtLpkAndNothingElseMoves) {
  auto env = demo_pod_env();
  const auto before = env;
  std::vector<LinkedService> mapped = {
      {"api", make_address("127.77.0.3"), {{"http", 80, "TCP"}, {"metrics", 9100, "TCP"}}},
      // redis is mapped but the pod's snapshot has no variables for it: none are added.
      {"redis", make_address("127.77.0.4"), {{"", 6379, "TCP"}}},
  };
  auto result = rewrite_service_links(env, mapped);

  EXPECT_EQ(env["API_SERVICE_HOST"], "127.77.0.3");
  EXPECT_EQ(env["API_SERVICE_PORT"], "80");
  EXPECT_EQ(env["API_SERVICE_PORT_METRICS"], "9100");
  EXPECT_EQ(env["API_PORT"], "tcp://127.77.0.3:80");
  EXPECT_EQ(env["API_PORT_9100_TCP"], "tcp://127.77.0.3:9100");
  EXPECT_EQ(env["API_PORT_9100_TCP_ADDR"], "127.77.0.3");
  EXPECT_EQ(result.rewritten.size(), 13u);
  EXPECT_FALSE(env.contains("REDIS_SERVICE_HOST"));
  for (const char* untouched :
       {"API_SERVICE_PORT_EXTRA", "API_PORT_80_TCP_URL", "API_SERVICE_HOSTNAME", "MY_APP_PORT",
        "REDIS_URL", "DATABASE_PASSWORD", "KUBERNETES_SERVICE_HOST"}) {
    EXPECT_EQ(env[untouched], before.at(untouched)) << untouched;
  }
  EXPECT_EQ(env.size(), before.size());

  // kubernetes is not mapped: reported, variable by variable, and left alone.
  EXPECT_EQ(result.unmapped_services, std::vector<std::string>{"KUBERNETES"});
  std::vector<std::string> expected_unmapped = {"KUBERNETES_PORT",
                                                "KUBERNETES_PORT_443_TCP",
                                                "KUBERNETES_PORT_443_TCP_ADDR",
                                                "KUBERNETES_PORT_443_TCP_PORT",
                                                "KUBERNETES_PORT_443_TCP_PROTO",
                                                "KUBERNETES_SERVICE_HOST",
                                                "KUBERNETES_SERVICE_PORT",
                                                "KUBERNETES_SERVICE_PORT_HTTPS"};
  EXPECT_EQ(result.unmapped, expected_unmapped);
}

TEST(RewriteServiceLinks, Ipv6ClusterAndLoopback) {
  EnvMap env = {{"DB_SERVICE_HOST", "fd00::10"},
                {"DB_SERVICE_PORT", "5432"},
                {"DB_PORT", "tcp://[fd00::10]:5432"},
                {"DB_PORT_5432_TCP", "tcp://[fd00::10]:5432"},
                {"DB_PORT_5432_TCP_ADDR", "fd00::10"}};
  auto result = rewrite_service_links(env, {{"db", make_address("::1"), {{"", 5432, "TCP"}}}});
  EXPECT_EQ(env["DB_SERVICE_HOST"], "::1");
  EXPECT_EQ(env["DB_PORT"], "tcp://[::1]:5432");
  EXPECT_EQ(env["DB_PORT_5432_TCP"], "tcp://[::1]:5432");
  EXPECT_EQ(env["DB_PORT_5432_TCP_ADDR"], "::1");
  EXPECT_EQ(result.rewritten.size(), 5u);
  EXPECT_TRUE(result.unmapped.empty());
}

TEST(RewriteServiceLinks, ColldingPrefixesOfTwoServices) {
  // Service foo's first port and service foo-service's Docker link share FOO_SERVICE_PORT.
  EnvMap env = {{"FOO_SERVICE_HOST", "10.0.0.1"},
                {"FOO_SERVICE_PORT", "tcp://10.0.0.2:81"},  // kubelet: the later service won
                {"FOO_SERVICE_SERVICE_HOST", "10.0.0.2"},
                {"FOO_SERVICE_SERVICE_PORT", "81"}};
  auto result = rewrite_service_links(env, {{"foo", make_address("127.0.0.5"), {{"", 80, "TCP"}}}});
  EXPECT_EQ(env["FOO_SERVICE_HOST"], "127.0.0.5");
  EXPECT_EQ(env["FOO_SERVICE_PORT"], "80");
  // foo-service is not mapped; the shared name belongs to the mapped one and is not reported.
  EXPECT_EQ(result.unmapped_services, std::vector<std::string>{"FOO_SERVICE"});
  EXPECT_EQ(result.unmapped,
            (std::vector<std::string>{"FOO_SERVICE_SERVICE_HOST", "FOO_SERVICE_SERVICE_PORT"}));
}

TEST(RewriteServiceLinks, AHostVariableThatIsNoAddressIsNoService) {
  EnvMap env = {{"LEGACY_SERVICE_HOST", "legacy.example.com"}, {"LEGACY_PORT", "tcp://x:1"}};
  auto result = rewrite_service_links(env, {});
  EXPECT_TRUE(result.unmapped_services.empty());
  EXPECT_TRUE(result.unmapped.empty());
}

TEST(ChildEnvironment, DeveloperKeepsTheMachineVariablesAndTheAppGetsTheRest) {
  EnvMap developer = {{"PATH", "/home/dev/bin:/usr/bin"},
                      {"HOME", "/home/dev"},
                      {"TERM", "xterm-256color"},
                      {"LANG", "en_GB.UTF-8"},
                      {"LC_ALL", "en_GB.UTF-8"},
                      {"EDITOR", "vim"},
                      {"LOG_LEVEL", "debug"},
                      {"LPK_FILES_ROOT", "/stale"}};
  EnvMap imported = {{"PATH", "/usr/local/sbin:/app/bin"},
                     {"HOME", "/root"},
                     {"HOSTNAME", "api-7d9f-abcde"},
                     {"LD_PRELOAD", "/usr/lib/libjemalloc.so.2"},
                     {"DISPLAY", ":0"},
                     {"LC_ALL", "C.UTF-8"},
                     {"LOG_LEVEL", "info"},
                     {"DATABASE_PASSWORD", "s3cr3t"}};
  auto lpk = lpk_variables("abc123", "/run/user/1000/lpk/sessions/abc123/files");
  auto env = build_child_environment(developer, imported, lpk);
  EXPECT_EQ(env["PATH"], "/home/dev/bin:/usr/bin");
  EXPECT_EQ(env["HOME"], "/home/dev");
  EXPECT_EQ(env["TERM"], "xterm-256color");
  EXPECT_EQ(env["LC_ALL"], "en_GB.UTF-8");
  EXPECT_FALSE(env.contains("LD_PRELOAD"));
  EXPECT_FALSE(env.contains("DISPLAY"));
  EXPECT_EQ(env["EDITOR"], "vim");
  EXPECT_EQ(env["HOSTNAME"], "api-7d9f-abcde");
  EXPECT_EQ(env["LOG_LEVEL"], "info");
  EXPECT_EQ(env["DATABASE_PASSWORD"], "s3cr3t");
  EXPECT_EQ(env["LPK_FILES_ROOT"], "/run/user/1000/lpk/sessions/abc123/files");
  EXPECT_EQ(env["LPK_SESSION"], "abc123");
  EXPECT_EQ(to_envp({{"A", "1"}, {"B", "x=y"}}), (std::vector<std::string>{"A=1", "B=x=y"}));
}

TEST(Dotenv, EscapesQuotesBackslashesNewlinesAndDollars) {
  EXPECT_EQ(dotenv_line("A", "plain value"), "A=\"plain value\"");
  EXPECT_EQ(dotenv_line("A", "say \"hi\""), "A=\"say \\\"hi\\\"\"");
  EXPECT_EQ(dotenv_line("A", "C:\\dir\\"), "A=\"C:\\\\dir\\\\\"");
  EXPECT_EQ(dotenv_line("A", "line1\nline2"), "A=\"line1\\nline2\"");
  EXPECT_EQ(dotenv_line("A", "$HOME and ${X} and $(id)"), "A=\"\\$HOME and \\${X} and \\$(id)\"");
  EXPECT_EQ(dotenv_line("A", ""), "A=\"\"");
  EXPECT_EQ(dotenv_line("A", "it's"), "A=\"it's\"");
  EXPECT_TRUE(is_portable_variable_name("_A1"));
  EXPECT_FALSE(is_portable_variable_name("1A"));
  EXPECT_FALSE(is_portable_variable_name("my.var"));
  EXPECT_FALSE(is_portable_variable_name(""));
}

class FilesTest : public ::testing::Test {
 protected:
  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  lpk::test::TempDir tmp_{"lpk-env-test-"};
  const fs::path root_{tmp_.path()};
};

TEST_F(FilesTest, EnvFileIs0600AndReadsBack) {
  auto path = root_ / "app.env";
  {
    std::ofstream loose(path);
    loose << "stale content, longer than the new one will be, stale content\n";
  }
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EnvMap env = {{"DATABASE_PASSWORD", "p\"a$s\\w\nord"}, {"my.var", "x"}, {"PLAIN", "1"}};
  std::vector<std::string> left_out;
  ASSERT_TRUE(write_env_file(path, env, left_out));
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(left_out, std::vector<std::string>{"my.var"});
  EXPECT_EQ(read(path), "DATABASE_PASSWORD=\"p\\\"a\\$s\\\\w\\nord\"\nPLAIN=\"1\"\n");

  fs::remove(path);
  mode_t old_mask = umask(0);
  auto written = write_env_file(path, env, left_out);
  umask(old_mask);
  ASSERT_TRUE(written) << written.error().message;
  EXPECT_EQ(mode_of(path), 0600u);
}

// python-dotenv, a real reader of the format, gets the same values back. Left out, as
// environment.hpp says: `$` (the readers that interpolate, docker compose and godotenv, read \$
// as $; python-dotenv keeps the backslash) and a value ending in a backslash (python-dotenv's
// quoted-value pattern takes the closing \\" for an escaped quote and drops the line).
// The system's Python (Debian's python3-dotenv, which tools/install-deps.sh installs), not
// whatever python3 comes first on PATH.
TEST_F(FilesTest, EnvFileRoundTripsThroughPythonDotenv) {
  if (std::system("/usr/bin/python3 -c 'import dotenv' 2>/dev/null") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 has no dotenv module (tools/install-deps.sh installs "
                    "python3-dotenv)";
  }
  EnvMap env = {{"QUOTES", "say \"hi\" and 'bye'"},
                {"BACKSLASH", "a\\b\\\\c"},
                {"NEWLINES", "one\ntwo\n"},
                {"TABS", "a\tb"},
                {"SPACES", "  padded  "},
                {"HASH", "a # not a comment"},
                {"EMPTY", ""}};
  std::vector<std::string> left_out;
  ASSERT_TRUE(write_env_file(root_ / "x.env", env, left_out));
  std::string cmd =
      "/usr/bin/python3 -c 'import json,sys; from dotenv import dotenv_values; "
      "print(json.dumps(dotenv_values(sys.argv[1], interpolate=False)))' " +
      (root_ / "x.env").string();
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  auto parsed = nlohmann::json::parse(output);
  for (const auto& [name, value] : env) {
    EXPECT_EQ(parsed.value(name, "<missing>"), value) << name;
  }
}

using File = tunnel::AgentFile;

TEST_F(FilesTest, ImportedFilesLandUnderTheRootWithOwnerOnlyModes) {
  std::string binary("a\0b\xff", 4);
  std::vector<File> files = {
      {"/etc/config/app.yaml", 0644, "port: 80\n"},
      {"/etc/config/..2024_01_01/nested/run.sh", 0755, "#!/bin/sh\n"},
      {"/var/run/secrets/db/password", 0400, "s3cr3t"},
      {"/etc/odd", 0, binary},
      {"relative/path", 0644, "x"},
      {"/etc/../../escape", 0644, "x"},
      {"/etc/config/", 0644, "x"},
  };
  FileMirror mirror(root_ / "session" / "files");
  auto report = mirror.apply({true, files, {}, {}});
  EXPECT_EQ(report.written.size(), 4u);
  ASSERT_EQ(report.failed.size(), 3u);
  EXPECT_EQ(report.failed[0].first, "relative/path");
  EXPECT_EQ(report.failed[1].first, "/etc/../../escape");
  EXPECT_FALSE(fs::exists(root_ / "escape"));

  auto base = mirror.root();
  EXPECT_EQ(mode_of(base), 0700u);
  EXPECT_EQ(mode_of(base / "etc" / "config"), 0700u);
  EXPECT_EQ(read(base / "etc/config/app.yaml"), "port: 80\n");
  EXPECT_EQ(mode_of(base / "etc/config/app.yaml"), 0600u);
  EXPECT_EQ(mode_of(base / "etc/config/..2024_01_01/nested/run.sh"), 0700u);
  EXPECT_EQ(mode_of(base / "var/run/secrets/db/password"), 0400u);
  EXPECT_EQ(read(base / "etc/odd"), binary);
  EXPECT_EQ(mode_of(base / "etc/odd"), 0400u);

  // A second import over the first (read-only files included) replaces the content.
  std::vector<File> again = {{"/var/run/secrets/db/password", 0400, "rotated"}};
  auto second = mirror.apply({false, again, {}, {}});
  EXPECT_TRUE(second.failed.empty());
  EXPECT_EQ(read(base / "var/run/secrets/db/password"), "rotated");
}

}  // namespace
}  // namespace lpk::proxy
