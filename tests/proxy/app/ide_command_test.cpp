#include "proxy/app/ide_command.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <stdexcept>

namespace lpk::proxy {
namespace {

using Args = std::vector<std::string>;

IdeOptions api_options() {
  return parse_ide_options(Args{"vscode", "--service", "api", "-n", "demo", "--context", "dev"});
}

/// The entry of `array` whose `key` is `value`; fails the test when there is none.
IdeJson entry(const IdeJson& array, const char* key, const std::string& value) {
  for (const auto& e : array) {
    if (e.value(key, "") == value) return e;
  }
  ADD_FAILURE() << "no entry with " << key << " = " << value << " in " << array.dump();
  return IdeJson::object();
}

void expect_fields(const IdeJson& object, std::initializer_list<const char*> fields) {
  for (const char* f : fields) EXPECT_TRUE(object.contains(f)) << f << " missing: " << object;
}

// The required fields of VS Code's schemas (tasks: src/vs/workbench/contrib/tasks/common/
// jsonSchema_v2.ts; launch: the debug configuration schema; inputs: configurationResolverSchema).
TEST(IdeVscode, TasksHaveTheSchemasRequiredFields) {
  auto tasks = vscode_tasks(api_options());
  EXPECT_EQ(tasks.at("version"), "2.0.0");
  for (const auto& t : tasks.at("tasks")) {
    expect_fields(t, {"label", "type"});
    if (t.at("type") == "process") expect_fields(t, {"command"});
  }
  for (const auto& i : tasks.at("inputs")) expect_fields(i, {"id", "type", "command"});
  auto connect = entry(tasks["tasks"], "label", "lpk: connect api");
  EXPECT_TRUE(connect.at("isBackground").get<bool>());
  const auto& background = connect.at("problemMatcher").at("background");
  expect_fields(background, {"beginsPattern", "endsPattern"});
  // Ready is connect's `ready` line (control/console.hpp) and nothing before it.
  std::regex ends(background.at("endsPattern").get<std::string>());
  EXPECT_TRUE(std::regex_search("ready", ends));
  EXPECT_FALSE(std::regex_search("tunnels: 1 of 1 agents connected", ends));
  // A matcher pattern needs a regexp, a file and a message ("kind": "file": no location).
  expect_fields(connect["problemMatcher"]["pattern"], {"regexp", "file", "message", "kind"});
}

TEST(IdeVscode, ConnectTaskRunsConnectWithTheEnvFileTheLaunchReads) {
  auto o = api_options();
  auto connect = entry(vscode_tasks(o)["tasks"], "label", "lpk: connect api");
  EXPECT_EQ(connect.at("args"),
            IdeJson({"connect", "--service", "api", "--context", "dev", "-n", "demo", "--env-file",
                  "${workspaceFolder}/.vscode/lpk-api.env"}));
  auto launch = vscode_launch(o);
  EXPECT_EQ(launch.at("version"), "0.2.0");
  auto config = entry(launch["configurations"], "name", "lpk: debug api");
  expect_fields(config, {"type", "request", "name"});
  EXPECT_EQ(config.at("envFile"), "${workspaceFolder}/.vscode/lpk-api.env");
  EXPECT_EQ(config.at("preLaunchTask"), "lpk: connect api");
  EXPECT_EQ(config.at("postDebugTask"), "lpk: end api");
}

TEST(IdeVscode, EndTaskStopsTheConnectTaskThenRestores) {
  auto tasks = vscode_tasks(api_options());
  auto end = entry(tasks["tasks"], "label", "lpk: end api");
  EXPECT_EQ(end.at("args"), IdeJson({"restore", "--context", "dev", "-n", "demo"}));
  auto stop = entry(tasks["tasks"], "label", end.at("dependsOn").get<std::string>());
  EXPECT_EQ(stop.at("command"), "echo ${input:lpk-terminate-api}");
  auto input = entry(tasks["inputs"], "id", "lpk-terminate-api");
  EXPECT_EQ(input.at("command"), "workbench.action.tasks.terminate");
  EXPECT_EQ(input.at("args"), "lpk: connect api");
}

TEST(IdeVscode, MergeKeepsOtherEntriesAndReplacesItsOwn) {
  IdeJson build = {{"label", "build"}, {"type", "shell"}, {"command", "make"}};
  IdeJson old = {{"label", "lpk: connect api"}, {"type", "shell"}, {"command", "old"}};
  IdeJson existing = {{"version", "2.0.0"},
                      {"tasks", {build, old}},
                      {"options", {{"env", {{"A", "1"}}}}}};
  auto merged = merge_vscode(existing, vscode_tasks(api_options()));
  EXPECT_EQ(merged.at("options"), existing.at("options"));
  EXPECT_EQ(entry(merged["tasks"], "label", "build"), existing["tasks"][0]);
  EXPECT_EQ(entry(merged["tasks"], "label", "lpk: connect api").at("type"), "process");
  EXPECT_EQ(merged["tasks"].size(), 4u);  // build + connect (replaced) + stop + end
  EXPECT_EQ(merged.at("inputs").size(), 1u);
  // Merging twice changes nothing more.
  EXPECT_EQ(merge_vscode(merged, vscode_tasks(api_options())), merged);
}

TEST(IdeVscode, MergeRefusesWhatItCannotMergeInto) {
  EXPECT_THROW(merge_vscode(IdeJson::array(), vscode_tasks(api_options())), std::invalid_argument);
  EXPECT_THROW(merge_vscode(IdeJson{{"tasks", "x"}}, vscode_tasks(api_options())),
               std::invalid_argument);
}

TEST(IdeVscode, OutboundOnlyWithoutService) {
  auto o = parse_ide_options(Args{"vscode"});
  auto connect = entry(vscode_tasks(o)["tasks"], "label", "lpk: connect outbound");
  EXPECT_EQ(connect.at("args"),
            IdeJson({"connect", "--env-file", "${workspaceFolder}/.vscode/lpk-outbound.env"}));
}

TEST(IdeVscode, BadCommandLinesSayWhatIsWrong) {
  EXPECT_THROW(parse_ide_options(Args{}), std::invalid_argument);
  EXPECT_THROW(parse_ide_options(Args{"emacs"}), std::invalid_argument);
  EXPECT_THROW(parse_ide_options(Args{"vscode", "--service"}), std::invalid_argument);
  EXPECT_THROW(parse_ide_options(Args{"vscode", "--bogus", "x"}), std::invalid_argument);
}

}  // namespace
}  // namespace lpk::proxy
