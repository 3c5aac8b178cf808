#include "proxy/app/kubectl_plugin.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>

namespace lpk::proxy {

namespace {

using std::invalid_argument;

/// kubectl's global flags that lpk-proxy understands, as lpk-proxy spells them.
const std::map<std::string, std::string, std::less<>> kKubeFlags = {
    {"--kubeconfig", "--kubeconfig"},
    {"--context", "--context"},
    {"-n", "-n"},
    {"--namespace", "-n"},
};

/// kubectl's global flags that pick a cluster or user apart from a context.
bool is_unsupported_kube_flag(std::string_view name) {
  return name == "--cluster" || name == "--user";
}

/// The commands that talk to a cluster and so take kubectl's flags.
bool takes_kube_flags(std::string_view command) {
  return command == "connect" || command == "doctor" || command == "restore" ||
         command == "init" || command == "ide" || command == "routes";
}

/// Commands whose first argument is a sub-command (`ide vscode`): kubectl's flags go after it.
bool has_subcommand(std::string_view command) { return command == "ide"; }

struct SplitFlag {
  std::string name;
  std::optional<std::string> value;  ///< given in the same word
};

/// `--name=value`, `-nvalue` or a bare `--name`.
SplitFlag split_flag(const std::string& word) {
  if (word.rfind("--", 0) == 0) {
    auto eq = word.find('=');
    if (eq == std::string::npos) return {word, std::nullopt};
    return {word.substr(0, eq), word.substr(eq + 1)};
  }
  if (word.size() > 2 && word.rfind("-n", 0) == 0) {
    return {"-n", word[2] == '=' ? word.substr(3) : word.substr(2)};
  }
  return {word, std::nullopt};
}

}  // namespace

bool invoked_as_plugin(std::string_view argv0) {
  auto slash = argv0.rfind('/');
  return argv0.substr(slash == std::string_view::npos ? 0 : slash + 1) == kPluginName;
}

std::vector<std::string> plugin_to_proxy_args(std::span<const std::string> args) {
  std::vector<std::pair<std::string, std::string>> kube;  // lpk-proxy flag, value
  std::vector<std::string> rest;
  std::size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) {
    auto flag = split_flag(args[i]);
    if (is_unsupported_kube_flag(flag.name)) {
      throw invalid_argument(flag.name +
                             " is not supported: lpk takes the cluster and user from "
                             "a kubeconfig context; pick one with --context");
    }
    auto known = kKubeFlags.find(flag.name);
    if (known == kKubeFlags.end()) {
      rest.push_back(args[i]);
      continue;
    }
    if (!flag.value && i + 1 >= args.size()) throw invalid_argument(flag.name + " needs a value");
    kube.emplace_back(known->second, flag.value ? *flag.value : args[++i]);
  }
  if (rest.empty()) throw invalid_argument("no command given (see kubectl lpk --help)");
  if (!kube.empty() && !takes_kube_flags(rest[0])) {
    throw invalid_argument("`kubectl lpk " + rest[0] + "` asks this machine, not a cluster: " +
                           kube.front().first + " does not apply to it");
  }
  std::size_t head = has_subcommand(rest[0]) && rest.size() > 1 ? 2 : 1;
  std::vector<std::string> out(rest.begin(), rest.begin() + head);
  for (auto& [flag, value] : kube) {
    out.push_back(flag);
    out.push_back(value);
  }
  out.insert(out.end(), rest.begin() + head, rest.end());
  out.insert(out.end(), args.begin() + i, args.end());
  return out;
}

}  // namespace lpk::proxy
