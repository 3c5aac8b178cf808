#include "proxy/app/ide_command.hpp"

#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "proxy/app/options.hpp"
#include "proxy/tunnel/flags.hpp"

namespace lpk::proxy {

namespace {

using std::invalid_argument;
namespace fs = std::filesystem;

/// The key that identifies an entry of each array ide writes into.
const std::pair<const char*, const char*> kMergedArrays[] = {
    {"tasks", "label"}, {"inputs", "id"}, {"configurations", "name"}};

/// connect's kube flags, as given to ide.
std::vector<std::string> kube_args(const IdeOptions& o) {
  std::vector<std::string> out;
  if (!o.kube.kubeconfig.empty()) out.insert(out.end(), {"--kubeconfig", o.kube.kubeconfig});
  if (!o.kube.context.empty()) out.insert(out.end(), {"--context", o.kube.context});
  if (!o.kube.namespace_override.empty()) {
    out.insert(out.end(), {"-n", o.kube.namespace_override});
  }
  return out;
}

IdeJson connect_args(const IdeOptions& o, const IdeNames& names) {
  std::vector<std::string> args{"connect"};
  if (!o.service.empty()) args.insert(args.end(), {"--service", o.service});
  auto kube = kube_args(o);
  args.insert(args.end(), kube.begin(), kube.end());
  args.insert(args.end(), {"--env-file", names.env_file});
  return args;
}

// VS Code waits for a background task's matcher to go inactive before it starts the debugger:
// active from the start (activeBegin), inactive at connect's `ready` line. The pattern turns
// connect's one-line errors into problems ("kind": "file" needs only a file and a message).
IdeJson connect_matcher() {
  return {{"owner", "lpk"},
          {"source", "lpk"},
          {"pattern",
           {{"regexp", "^(lpk-proxy): (.*)$"}, {"kind", "file"}, {"file", 1}, {"message", 2}}},
          {"background",
           {{"activeBegin", true},
            {"beginsPattern", "^lpk-proxy connect"},
            {"endsPattern", "^ready$"}}}};
}

IdeJson connect_task(const IdeOptions& o, const IdeNames& names) {
  return {{"label", names.connect_task},
          {"type", "process"},
          {"command", o.proxy},
          {"args", connect_args(o, names)},
          {"options", {{"cwd", "${workspaceFolder}"}}},
          {"isBackground", true},
          {"problemMatcher", connect_matcher()}};
}

// Terminating the task closes its terminal: lpk-proxy gets SIGHUP and ends the session as on
// SIGTERM. `restore` then puts back whatever a session that could not end cleanly left behind.
IdeJson stop_task(const IdeNames& names) {
  return {{"label", names.stop_task},
          {"type", "shell"},
          {"command", "echo ${input:" + names.input + "}"},
          {"problemMatcher", IdeJson::array()},
          {"hide", true}};
}

IdeJson end_task(const IdeOptions& o, const IdeNames& names) {
  IdeJson args = IdeJson::array({"restore"});
  for (auto& a : kube_args(o)) args.push_back(a);
  return {{"label", names.end_task},
          {"type", "process"},
          {"command", o.proxy},
          {"args", args},
          {"dependsOn", names.stop_task},
          {"problemMatcher", IdeJson::array()}};
}

/// Replaces or appends `entry` in `array` by its `key`.
void put_entry(IdeJson& array, const IdeJson& entry, const char* key) {
  for (auto& existing : array) {
    if (existing.is_object() && existing.value(key, IdeJson()) == entry.at(key)) {
      existing = entry;
      return;
    }
  }
  array.push_back(entry);
}

/// The file's JSON, or an empty object when it does not exist. VS Code also reads comments and
/// trailing commas (JSONC); merging would drop them, so such a file is refused instead.
IdeJson read_existing(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    if (fs::exists(path)) throw std::runtime_error("cannot read " + path.string());
    return IdeJson::object();
  }
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find_first_not_of(" \t\r\n") == std::string::npos) return IdeJson::object();
  try {
    return IdeJson::parse(text.str());
  } catch (const IdeJson::parse_error&) {
    throw std::runtime_error(path.string() + " is not plain JSON (comments or trailing commas?): "
                             "lpk would lose them by merging; remove them or move the file away");
  }
}

/// Writes through a temporary file and a rename, so an interrupted write leaves the old file.
void write_json(const fs::path& path, const IdeJson& doc) {
  auto tmp = path;
  tmp += ".lpk-tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << doc.dump(4) << "\n";
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

void merge_into_file(const fs::path& path, const IdeJson& generated) {
  try {
    write_json(path, merge_vscode(read_existing(path), generated));
  } catch (const invalid_argument& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

}  // namespace

IdeOptions parse_ide_options(std::span<const std::string> args) {
  if (args.empty() || args[0] != "vscode") {
    throw invalid_argument("ide wants an IDE: `lpk-proxy ide vscode` (JetBrains IDEs read the "
                           "env file of connect --env-file, see docs/ide.md)");
  }
  IdeOptions o;
  o.ide = args[0];
  auto handle = [&](const std::string& flag, const std::string& value) {
    if (flag == "--service") o.service = value;
    else if (flag == "-n" || flag == "--namespace") o.kube.namespace_override = value;
    else if (flag == "--kubeconfig") o.kube.kubeconfig = value;
    else if (flag == "--context") o.kube.context = value;
    else if (flag == "--dir") o.dir = value;
    else if (flag == "--debugger") o.debugger = value;
    else if (flag == "--program") o.program = value;
    else throw invalid_argument("unknown flag " + flag + " (see lpk-proxy ide --help)");
  };
  tunnel::for_each_flag(args.subspan(1), handle);
  return o;
}

IdeNames ide_names(const IdeOptions& o) {
  auto what = o.service.empty() ? std::string("outbound") : o.service;
  return {"lpk: connect " + what,
          "lpk: stop " + what,
          "lpk: end " + what,
          "lpk: debug " + what,
          "lpk-terminate-" + what,
          "${workspaceFolder}/.vscode/lpk-" + what + ".env"};
}

IdeJson vscode_tasks(const IdeOptions& o) {
  auto names = ide_names(o);
  IdeJson input = {{"id", names.input},
                {"type", "command"},
                {"command", "workbench.action.tasks.terminate"},
                {"args", names.connect_task}};
  return {{"version", "2.0.0"},
          {"tasks", {connect_task(o, names), stop_task(names), end_task(o, names)}},
          {"inputs", {input}}};
}

IdeJson vscode_launch(const IdeOptions& o) {
  auto names = ide_names(o);
  IdeJson launch = {{"name", names.launch},
                 {"type", o.debugger},
                 {"request", "launch"},
                 {"program", o.program},
                 {"cwd", "${workspaceFolder}"},
                 {"envFile", names.env_file},
                 {"preLaunchTask", names.connect_task},
                 {"postDebugTask", names.end_task}};
  return {{"version", "0.2.0"}, {"configurations", {launch}}};
}

IdeJson merge_vscode(IdeJson existing, const IdeJson& generated) {
  if (!existing.is_object()) throw invalid_argument("the file holds no JSON object");
  if (!existing.contains("version")) existing["version"] = generated.at("version");
  for (auto [array, key] : kMergedArrays) {
    if (!generated.contains(array)) continue;
    auto& into = existing[array];
    if (into.is_null()) into = IdeJson::array();
    if (!into.is_array()) throw invalid_argument(std::string("\"") + array + "\" is not an array");
    for (const auto& entry : generated.at(array)) put_entry(into, entry, key);
  }
  return existing;
}

int run_ide(std::span<const std::string> args) {
  IdeOptions o;
  try {
    o = parse_ide_options(args);
  } catch (const invalid_argument& e) {
    return fail(e.what(), 2);
  }
  std::error_code ec;
  // The tasks run this very binary, so that a build tree's lpk-proxy works as well as /usr/bin's.
  if (auto self = fs::read_symlink("/proc/self/exe", ec); !ec) o.proxy = self.string();
  auto vscode = o.dir / ".vscode";
  try {
    fs::create_directories(vscode);
    merge_into_file(vscode / "tasks.json", vscode_tasks(o));
    merge_into_file(vscode / "launch.json", vscode_launch(o));
  } catch (const std::exception& e) {
    return fail(std::string("ide: ") + e.what());
  }
  auto names = ide_names(o);
  std::cout << "wrote " << (vscode / "tasks.json").string() << " (" << names.connect_task << ", "
            << names.end_task << ") and " << (vscode / "launch.json").string() << " ("
            << names.launch << ")\n";
  return 0;
}

}  // namespace lpk::proxy
