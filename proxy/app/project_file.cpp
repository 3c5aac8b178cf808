#include "proxy/app/project_file.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "proxy/app/options.hpp"

namespace lpk::proxy {

namespace fs = std::filesystem;
using std::invalid_argument;

namespace {

FileMark mark_of(const YAML::Node& node) {
  auto m = node.Mark();
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

/// Reads the YAML tree into settings, collecting every error with its place.
class Reader {
 public:
  explicit Reader(const fs::path& path) : dir_(path.parent_path()) { out_.file.path = path; }

  LoadedProject read(std::string_view text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::ParserException& e) {
      out_.errors.push_back({{e.mark.line + 1, e.mark.column + 1}, e.msg});
      return std::move(out_);
    }
    if (root.IsNull()) {
      error(root, "the file is empty; it wants at least `services:` (see docs/project-file.md)");
    } else if (!root.IsMap()) {
      error(root, "the file wants a mapping of settings such as `namespace:` and `services:`");
    } else {
      read_top(root);
    }
    std::stable_sort(out_.errors.begin(), out_.errors.end(), [](const auto& a, const auto& b) {
      return std::tie(a.mark.line, a.mark.column) < std::tie(b.mark.line, b.mark.column);
    });
    return std::move(out_);
  }

 private:
  using Handler = std::function<void(const YAML::Node&)>;

  void error(const YAML::Node& at, std::string message) {
    out_.errors.push_back({mark_of(at), std::move(message)});
  }

  /// Calls the handler of each key; an unknown key is an error naming the known ones.
  void each_key(const YAML::Node& map, const std::string& where,
                const std::map<std::string, Handler>& handlers) {
    if (!map.IsMap()) return error(map, where + " wants a mapping");
    for (const auto& kv : map) {
      auto key = kv.first.as<std::string>("");
      auto found = handlers.find(key);
      if (found != handlers.end()) {
        found->second(kv.second);
        continue;
      }
      std::string known;
      for (const auto& [name, h] : handlers) known += (known.empty() ? "" : ", ") + name;
      error(kv.first, "unknown key '" + key + "'" + (where.empty() ? "" : " in " + where) +
                          " (known: " + known + ")");
    }
  }

  std::optional<std::string> scalar(const YAML::Node& node, const std::string& key) {
    if (node.IsScalar()) return node.Scalar();
    error(node, key + " wants a single value");
    return std::nullopt;
  }

  /// A setting for `flag` from `node`, checked with connect's own parser.
  void add(std::vector<ProjectSetting>& into, const std::string& key, const std::string& flag,
           const YAML::Node& node, bool is_path = false) {
    auto value = scalar(node, key);
    if (!value) return;
    if (is_path && !value->empty()) value = (dir_ / *value).lexically_normal().string();
    ProjectSetting setting{flag, *value, mark_of(node)};
    if (check(key, setting)) into.push_back(std::move(setting));
  }

  bool check(const std::string& key, const ProjectSetting& setting) {
    std::vector<std::string> args{"--service", "x", setting.flag};
    if (!setting.is_switch) args.push_back(setting.value);
    try {
      parse_connect_options(args);
      return true;
    } catch (const std::exception& e) {
      out_.errors.push_back({setting.mark, key + ": " + e.what()});
      return false;
    }
  }

  void add_list(std::vector<ProjectSetting>& into, const std::string& key,
                const std::string& flag, const YAML::Node& node) {
    if (!node.IsSequence()) return error(node, key + " wants a list");
    for (std::size_t i = 0; i < node.size(); ++i) {
      add(into, key + "[" + std::to_string(i) + "]", flag, node[i]);
    }
  }

  void add_env(std::vector<ProjectSetting>& into, const std::string& key,
               const YAML::Node& node) {
    if (!node.IsMap()) return error(node, key + " wants a mapping of NAME: VALUE");
    for (const auto& kv : node) {
      auto name = kv.first.as<std::string>("");
      auto value = scalar(kv.second, key + "." + name);
      if (!value) continue;
      ProjectSetting setting{"--env", name + "=" + *value, mark_of(kv.second)};
      if (check(key + "." + name, setting)) into.push_back(std::move(setting));
    }
  }

  void add_switch(std::vector<ProjectSetting>& into, const std::string& key,
                  const std::string& flag, const YAML::Node& node) {
    bool on = false;
    try {
      on = node.as<bool>();
    } catch (const YAML::Exception&) {
      return error(node, key + " wants true or false");
    }
    if (on) into.push_back({flag, "", mark_of(node), true});
  }

  void read_top(const YAML::Node& root) {
    auto& s = out_.file.settings;
    each_key(root, "", {
        {"namespace", [&](const auto& n) { add(s, "namespace", "-n", n); }},
        {"context", [&](const auto& n) { add(s, "context", "--context", n); }},
        {"kubeconfig", [&](const auto& n) { add(s, "kubeconfig", "--kubeconfig", n, true); }},
        {"agentImage", [&](const auto& n) { add(s, "agentImage", "--agent-image", n); }},
        {"alsoNamespaces",
         [&](const auto& n) { add_list(s, "alsoNamespaces", "--also-namespace", n); }},
        {"envFile", [&](const auto& n) { add(s, "envFile", "--env-file", n, true); }},
        {"env", [&](const auto& n) { add_env(s, "env", n); }},
        {"timeout", [&](const auto& n) { add(s, "timeout", "--timeout", n); }},
        {"orphanTimeout", [&](const auto& n) { add(s, "orphanTimeout", "--orphan-timeout", n); }},
        {"routeHeader", [&](const auto& n) { add(s, "routeHeader", "--route-header", n); }},
        {"files", [&](const auto& n) { read_files(n); }},
        {"dns", [&](const auto& n) { read_dns(n); }},
        {"services", [&](const auto& n) { read_services(n); }},
    });
  }

  void read_files(const YAML::Node& node) {
    auto& s = out_.file.settings;
    each_key(node, "files", {
        {"limit", [&](const auto& n) { add(s, "files.limit", "--file-limit", n); }},
        {"skip", [&](const auto& n) { add_list(s, "files.skip", "--skip-file", n); }},
    });
  }

  void read_dns(const YAML::Node& node) {
    auto& s = out_.file.settings;
    each_key(node, "dns", {
        {"address", [&](const auto& n) { add(s, "dns.address", "--dns", n); }},
        {"zone", [&](const auto& n) { add(s, "dns.zone", "--zone", n); }},
        {"resolvConf", [&](const auto& n) { add(s, "dns.resolvConf", "--resolv-conf", n, true); }},
        {"pool", [&](const auto& n) { add(s, "dns.pool", "--pool", n); }},
        {"systemResolver",
         [&](const auto& n) { add_switch(s, "dns.systemResolver", "--resolver", n); }},
    });
  }

  void read_services(const YAML::Node& node) {
    if (!node.IsSequence()) {
      return error(node, "services wants a list of entries such as `- name: api`");
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < node.size(); ++i) {
      ProjectService service;
      service.mark = mark_of(node[i]);
      read_service(node[i], "services[" + std::to_string(i) + "]", service);
      if (service.name.empty()) continue;
      if (!names.insert(service.name).second) {
        error(node[i], "service " + service.name + " is listed twice");
        continue;
      }
      out_.file.services.push_back(std::move(service));
    }
  }

  void read_service(const YAML::Node& node, const std::string& key, ProjectService& service) {
    auto& s = service.settings;
    each_key(node, key, {
        {"name", [&](const auto& n) { read_service_name(n, key, service); }},
        {"container", [&](const auto& n) { add(s, key + ".container", "--container", n); }},
        {"ports", [&](const auto& n) { add_list(s, key + ".ports", "--local-port", n); }},
        {"run", [&](const auto& n) { read_run(n, key + ".run", service); }},
        {"env", [&](const auto& n) { add_env(s, key + ".env", n); }},
    });
    if (node.IsMap() && !node["name"]) error(node, key + " wants a name: the Service to connect");
  }

  void read_service_name(const YAML::Node& node, const std::string& key,
                         ProjectService& service) {
    auto name = scalar(node, key + ".name");
    if (!name) return;
    bool ok = !name->empty() && name->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") ==
                                   std::string::npos;
    if (!ok) return error(node, key + ".name wants a Service's name (lowercase, digits and -)");
    service.name = *name;
  }

  // A string runs through /bin/sh -c; a list is the argv itself. Either starts in the file's
  // folder, so that `run: ./my-service` means the same from every sub-folder.
  void read_run(const YAML::Node& node, const std::string& key, ProjectService& service) {
    std::vector<std::string> argv;
    if (node.IsScalar() && !node.Scalar().empty()) {
      argv = {"/bin/sh", "-c", node.Scalar()};
    } else if (node.IsSequence() && node.size() > 0) {
      for (const auto& word : node) {
        auto text = scalar(word, key);
        if (!text) return;
        argv.push_back(*text);
      }
    } else {
      return error(node, key + " wants a command: a string (run by /bin/sh) or a list of words");
    }
    service.run = {"/bin/sh", "-c", "cd -- \"$0\" && exec \"$@\"", dir_.string()};
    service.run.insert(service.run.end(), argv.begin(), argv.end());
  }

  fs::path dir_;
  LoadedProject out_;
};

}  // namespace

LoadedProject parse_project_file(std::string_view text, const fs::path& path) {
  return Reader(path).read(text);
}

LoadedProject load_project_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    LoadedProject failed;
    failed.file.path = path;
    failed.errors.push_back({{}, "cannot read the file"});
    return failed;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_project_file(text.str(), fs::absolute(path));
}

std::optional<fs::path> find_project_file(const fs::path& start) {
  std::error_code ec;
  for (auto dir = fs::absolute(start, ec); !ec; dir = dir.parent_path()) {
    if (fs::is_regular_file(dir / kProjectFileName, ec)) return dir / kProjectFileName;
    if (fs::exists(dir / ".git", ec) || dir == dir.root_path()) break;
  }
  return std::nullopt;
}

std::string describe_error(const fs::path& path, const ProjectError& error) {
  if (error.mark.line == 0) return path.string() + ": " + error.message;
  return path.string() + ":" + std::to_string(error.mark.line) + ":" +
         std::to_string(error.mark.column) + ": " + error.message;
}

namespace {

/// The flags `args` give before any `--`, with -n and --namespace as one.
std::set<std::string> given_flags(std::span<const std::string> args) {
  std::set<std::string> given;
  for (const auto& a : args) {
    if (a == "--") break;
    if (a.starts_with("-")) given.insert(a == "--namespace" ? "-n" : a);
  }
  return given;
}

/// The entries of `services:` this connect is for: those --service names (a service the file
/// does not list gets the file's session settings only), else every one the file lists.
std::vector<const ProjectService*> chosen_services(const ProjectFile& file,
                                                   std::span<const std::string> args) {
  std::vector<const ProjectService*> chosen;
  bool named = false;
  auto end = std::find(args.begin(), args.end(), "--");
  for (auto it = args.begin(); it != end; ++it) {
    if (*it != "--service" || it + 1 == end) continue;
    named = true;
    for (const auto& s : file.services) {
      if (s.name == *(it + 1)) chosen.push_back(&s);
    }
  }
  if (!named) {
    for (const auto& s : file.services) chosen.push_back(&s);
  }
  return chosen;
}

/// `words` as one /bin/sh command line, each word single-quoted.
std::string shell_quoted(const std::vector<std::string>& words) {
  std::string line;
  for (const auto& w : words) {
    std::string quoted = "'";
    for (char c : w) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += (line.empty() ? "" : " ") + quoted + "'";
  }
  return line;
}

/// A service's settings when the session has several: its ports and its command name it
/// (`--local-port api:8080:80`, `--run api='...'`), as connect's per-service flags want.
void append_service_of_several(std::vector<std::string>& out, const ProjectService& service,
                               const std::set<std::string>& given, bool has_command) {
  for (const auto& s : service.settings) {
    if (s.flag == "--local-port" && !given.count(s.flag)) {
      out.insert(out.end(), {s.flag, service.name + ":" + s.value});
    } else if (s.flag == "--env" || s.flag == "--container") {
      throw invalid_argument(service.name + ": " + (s.flag == "--env" ? "env" : "container") +
                             " of one entry of services: applies to a session of that service "
                             "alone; with several, put env at the top level or connect it "
                             "with --service " + service.name);
    }
  }
  if (!service.run.empty() && !given.count("--run") && !has_command) {
    // The file's run starts in the file's folder: /bin/sh -c 'cd -- "$0" && exec "$@"' DIR ...
    out.insert(out.end(), {"--run", service.name + "=" + shell_quoted(service.run)});
  }
}

/// Settings of the file that the command line does not give. --env adds up: the command line's
/// come later, so they win for a name both set.
void append_settings(std::vector<std::string>& out, const std::vector<ProjectSetting>& settings,
                     const std::set<std::string>& given) {
  for (const auto& s : settings) {
    if (s.flag != "--env" && given.count(s.flag)) continue;
    out.push_back(s.flag);
    if (!s.is_switch) out.push_back(s.value);
  }
}

/// Takes --config FILE and --no-config out of `args`; returns the file to read, if any.
std::optional<fs::path> project_file_choice(std::vector<std::string>& args) {
  std::optional<fs::path> path;
  bool none = false;
  auto end = std::find(args.begin(), args.end(), "--");
  for (auto it = args.begin(); it != end;) {
    if (*it == "--no-config") {
      none = true;
      it = args.erase(it);
    } else if (*it == "--config") {
      if (it + 1 == end) throw invalid_argument("--config wants the path of an lpk.yaml");
      path = *(it + 1);
      it = args.erase(it, it + 2);
    } else {
      ++it;
    }
    end = std::find(args.begin(), args.end(), "--");
  }
  if (none && path) throw invalid_argument("--config and --no-config exclude each other");
  if (none) return std::nullopt;
  if (path) return path;
  return find_project_file(fs::current_path());
}

}  // namespace

std::vector<std::string> with_project_file(std::span<const std::string> given_args,
                                           std::optional<fs::path>& used) {
  std::vector<std::string> args(given_args.begin(), given_args.end());
  auto path = project_file_choice(args);
  used = path;
  if (!path) return args;
  auto loaded = load_project_file(*path);
  if (!loaded.errors.empty()) {
    auto more = loaded.errors.size() - 1;
    throw invalid_argument(describe_error(*path, loaded.errors.front()) +
                           (more ? " (and " + std::to_string(more) + " more" : " (") +
                           "; `lpk-proxy config validate " + path->string() + "` lists them)");
  }
  const auto given = given_flags(args);
  const auto services = chosen_services(loaded.file, args);
  const bool has_command = std::find(args.begin(), args.end(), "--") != args.end();
  std::vector<std::string> out;
  append_settings(out, loaded.file.settings, given);
  for (const auto* service : services) {
    if (!given.count("--service")) out.insert(out.end(), {"--service", service->name});
    if (services.size() == 1) {
      append_settings(out, service->settings, given);
    } else {
      append_service_of_several(out, *service, given, has_command);
    }
  }
  out.insert(out.end(), args.begin(), args.end());
  if (services.size() == 1 && !services[0]->run.empty() && !has_command) {
    out.push_back("--");
    out.insert(out.end(), services[0]->run.begin(), services[0]->run.end());
  }
  return out;
}

}  // namespace lpk::proxy
