#include "proxy/app/project_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "proxy/app/options.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

constexpr const char* kDemo = R"(namespace: demo
context: kubesim
alsoNamespaces: [other]
env:
  REDIS_ADDR: "${service:redis}:6379"
dns:
  zone: cluster.local
  systemResolver: false
files:
  limit: 4096
services:
  - name: api
    container: api
    ports: ["18080:8080", 9090]
    run: ["python3", "local_api.py"]
    env:
      WEB_URL: "http://${service:web.demo:80}/"
)";

LoadedProject parse(const std::string& text) {
  return parse_project_file(text, "/repo/lpk.yaml");
}

/// "LINE:COLUMN: MESSAGE" of each error.
std::vector<std::string> errors_of(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& e : parse(text).errors) {
    out.push_back(std::to_string(e.mark.line) + ":" + std::to_string(e.mark.column) + ": " +
                  e.message);
  }
  return out;
}

TEST(ProjectFile, ReadsEverySettingAsTheFlagItStandsFor) {
  auto loaded = parse(kDemo);
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors.front().message;
  Args flags;
  for (const auto& s : loaded.file.settings) flags.push_back(s.flag + " " + s.value);
  EXPECT_EQ(flags, (Args{"-n demo", "--context kubesim", "--also-namespace other",
                         "--env REDIS_ADDR=${service:redis}:6379", "--zone cluster.local",
                         "--file-limit 4096"}));
  ASSERT_EQ(loaded.file.services.size(), 1u);
  const auto& api = loaded.file.services[0];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.mark.line, 12);
  ASSERT_EQ(api.settings.size(), 4u);
  EXPECT_EQ(api.settings[1].value, "18080:8080");
  EXPECT_EQ(api.settings[1].mark.line, 14);
  EXPECT_EQ(api.settings[2].value, "9090");
  // The command starts in the file's folder, whichever sub-folder connect runs from.
  EXPECT_EQ(api.run, (Args{"/bin/sh", "-c", "cd -- \"$0\" && exec \"$@\"", "/repo", "python3",
                           "local_api.py"}));
}

TEST(ProjectFile, EveryErrorHasItsLineAndColumn) {
  auto errors = errors_of(
      "namespace: demo\n"
      "colour: blue\n"
      "services:\n"
      "  - name: api\n"
      "    ports: [\"80:http\"]\n"
      "    env:\n"
      "      A: \"${service:}\"\n"
      "  - container: x\n"
      "dns:\n"
      "  pool: 10.0.0.0/8\n");
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_EQ(errors[0].substr(0, 30), "2:1: unknown key 'colour' (kno");
  EXPECT_EQ(errors[1].substr(0, 28), "5:13: services[0].ports[0]: ");
  EXPECT_NE(errors[2].find("7:10: services[0].env.A: "), std::string::npos) << errors[2];
  EXPECT_NE(errors[2].find("${service:}"), std::string::npos) << errors[2];
  EXPECT_NE(errors[3].find("8:5: services[1] wants a name"), std::string::npos) << errors[3];
  EXPECT_NE(errors[4].find("10:9: dns.pool: "), std::string::npos) << errors[4];
}

TEST(ProjectFile, SyntaxErrorsAndWrongShapes) {
  auto bad_yaml = errors_of("services:\n  - name: api\n   ports: [\n");
  ASSERT_EQ(bad_yaml.size(), 1u);
  EXPECT_EQ(bad_yaml[0].substr(0, 2), "3:");
  EXPECT_EQ(errors_of("").size(), 1u);
  EXPECT_EQ(errors_of("- a\n- b\n").size(), 1u);
  EXPECT_EQ(errors_of("services: api\n")[0], "1:11: services wants a list of entries such as "
                                            "`- name: api`");
  EXPECT_EQ(errors_of("services:\n  - name: api\n  - name: api\n")[0],
            "3:5: service api is listed twice");
  EXPECT_EQ(errors_of("dns:\n  systemResolver: maybe\n")[0],
            "2:19: dns.systemResolver wants true or false");
}

TEST(ProjectFile, FlagsOverrideTheFile) {
  test::TempDir dir;
  auto path = fs::path(dir.path()) / "lpk.yaml";
  std::ofstream(path) << kDemo;
  std::optional<fs::path> used;
  auto args = with_project_file(Args{"--config", path.string(), "-n", "mine", "--local-port",
                                     "7000:8080", "--env", "REDIS_ADDR=x"},
                                used);
  ASSERT_EQ(used, path);
  auto options = parse_connect_options(args);
  EXPECT_EQ(options.kube.namespace_override, "mine");
  EXPECT_EQ(options.kube.context, "kubesim");
  ASSERT_EQ(options.services.size(), 1u);
  EXPECT_EQ(options.services[0].name, "api");
  EXPECT_EQ(options.services[0].inbound.by_remote.size(), 1u);
  EXPECT_EQ(options.services[0].inbound.by_remote.at(8080), 7000);
  ASSERT_EQ(options.env.size(), 3u);
  EXPECT_EQ(options.env.back(), (std::pair<std::string, std::string>{"REDIS_ADDR", "x"}));
  ASSERT_EQ(options.command.size(), 6u);
  EXPECT_EQ(options.command[4], "python3");
  // A command on the command line replaces the file's.
  auto own = parse_connect_options(with_project_file(
      Args{"--config", path.string(), "--", "./serve"}, used));
  EXPECT_EQ(own.command, Args{"./serve"});
  auto none = with_project_file(Args{"--no-config", "-n", "x"}, used);
  EXPECT_EQ(none, (Args{"-n", "x"}));
  EXPECT_FALSE(used);
}

TEST(ProjectFile, SeveralServicesConnectTogetherEachWithItsPortsAndCommand) {
  test::TempDir dir;
  auto path = fs::path(dir.path()) / "lpk.yaml";
  std::ofstream(path) << "services:\n  - name: api\n    ports: [\"9000:8080\"]\n"
                         "    run: ./api --it's\n"
                         "  - name: worker\n    ports: [\"9001:8080\"]\n    run: [./worker, a b]\n";
  std::optional<fs::path> used;
  auto both = parse_connect_options(with_project_file(Args{"--config", path.string()}, used));
  ASSERT_EQ(both.services.size(), 2u);
  EXPECT_EQ(both.services[0].name, "api");
  EXPECT_EQ(both.services[0].inbound.local_port_for(8080), 9000);
  EXPECT_EQ(both.services[1].inbound.local_port_for(8080), 9001);
  // Each command runs in the file's folder, its words quoted for the shell --run hands it to.
  EXPECT_EQ(both.services[0].run, "'/bin/sh' '-c' 'cd -- \"$0\" && exec \"$@\"' '" +
                                      dir.path() + "' '/bin/sh' '-c' './api --it'\\''s'");
  EXPECT_NE(both.services[1].run.find("'./worker' 'a b'"), std::string::npos) << both.services[1].run;
  EXPECT_TRUE(both.command.empty());
  // --service picks one: its command is the session's `-- COMMAND`, as with a one-service file.
  auto worker = parse_connect_options(
      with_project_file(Args{"--config", path.string(), "--service", "worker"}, used));
  ASSERT_EQ(worker.services.size(), 1u);
  EXPECT_EQ(worker.services[0].name, "worker");
  EXPECT_EQ(worker.services[0].inbound.local_port_for(8080), 9001);
  EXPECT_EQ(worker.command.back(), "a b");
  // A service's own env or container needs a session of that service alone.
  std::ofstream(path) << "services:\n  - name: api\n    env: {A: b}\n  - name: worker\n";
  try {
    with_project_file(Args{"--config", path.string()}, used);
    FAIL() << "a per-service env with two services was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("api: env of one entry"), std::string::npos) << e.what();
  }
}

TEST(ProjectFile, AFileWithErrorsIsRefusedWithTheFirst) {
  test::TempDir dir;
  auto path = fs::path(dir.path()) / "lpk.yaml";
  std::ofstream(path) << "namespace: demo\nservices:\n  - name: API\n  - nme: x\n";
  std::optional<fs::path> used;
  try {
    with_project_file(Args{"--config", path.string()}, used);
    FAIL() << "a file with errors was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path.string() + ":3:11: services[0].name wants", 0), 0u)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("and 2 more"), std::string::npos) << e.what();
  }
}

TEST(ProjectFile, FoundFromASubFolderUpToTheRepositoryRoot) {
  test::TempDir dir;
  auto repo = fs::path(dir.path()) / "repo";
  fs::create_directories(repo / "src" / "deep");
  fs::create_directories(repo / ".git");
  EXPECT_FALSE(find_project_file(repo / "src" / "deep"));
  std::ofstream(fs::path(dir.path()) / "lpk.yaml") << "services: []\n";  // above the repository: not its
  EXPECT_FALSE(find_project_file(repo / "src" / "deep"));
  std::ofstream(repo / "lpk.yaml") << "services: []\n";
  EXPECT_EQ(find_project_file(repo / "src" / "deep"), repo / "lpk.yaml");
  std::ofstream(repo / "src" / "lpk.yaml") << "services: []\n";
  EXPECT_EQ(find_project_file(repo / "src" / "deep"), repo / "src" / "lpk.yaml");
}

TEST(ProjectFile, RelativePathsAreTheFilesFolders) {
  auto loaded = parse("kubeconfig: ../kube/config\nenvFile: .env\n");
  ASSERT_TRUE(loaded.errors.empty());
  EXPECT_EQ(loaded.file.settings[0].value, "/kube/config");
  EXPECT_EQ(loaded.file.settings[1].value, "/repo/.env");
}

}  // namespace
}  // namespace lpk::proxy

namespace lpk::proxy {
namespace {

TEST(ProjectFile, RouteHeaderIsTheFlagAndABadNameIsAnErrorAtItsPlace) {
  auto loaded = parse_project_file("services:\n  - name: api\nrouteHeader: x-lpk-route=\n",
                                   "/repo/lpk.yaml");
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors.front().message;
  ASSERT_EQ(loaded.file.settings.size(), 1u);
  EXPECT_EQ(loaded.file.settings[0].flag, "--route-header");
  EXPECT_EQ(loaded.file.settings[0].value, "x-lpk-route=");
  auto bad = parse_project_file("services:\n  - name: api\nrouteHeader: \"x y=z\"\n",
                                "/repo/lpk.yaml");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_NE(bad.errors[0].message.find("not a valid header name"), std::string::npos)
      << bad.errors[0].message;
  EXPECT_EQ(bad.errors[0].mark.line, 3);
}

}  // namespace
}  // namespace lpk::proxy
