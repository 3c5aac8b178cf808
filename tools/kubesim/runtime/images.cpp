#include "tools/kubesim/runtime/images.hpp"

#include <yaml-cpp/yaml.h>

#include <stdexcept>

namespace lpk::kubesim {

std::string image_repository(const std::string& image) {
  std::string s = image.substr(0, image.find('@'));
  size_t slash = s.rfind('/');
  size_t colon = s.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) s.resize(colon);
  size_t first = s.find('/');
  if (first != std::string::npos) {
    std::string host = s.substr(0, first);
    if (host.find('.') != std::string::npos || host.find(':') != std::string::npos ||
        host == "localhost") {
      s = s.substr(first + 1);
    }
  }
  if (s.rfind("library/", 0) == 0) s = s.substr(8);
  return s;
}

namespace {
std::string substitute(std::string s, const std::string& bin_dir) {
  size_t p = s.find("@BIN@");
  if (p != std::string::npos) s.replace(p, 5, bin_dir);
  return s;
}
}  // namespace

ImageMap ImageMap::load(const std::filesystem::path& file, const std::string& bin_dir) {
  ImageMap m;
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read image map " + file.string() + ": " + e.what());
  }
  if (!root.IsMap()) throw std::runtime_error("image map " + file.string() + " is not a map");
  for (const auto& kv : root) {
    std::vector<std::string> cmd;
    if (!kv.second.IsSequence()) {
      throw std::runtime_error("image map " + file.string() + ": " + kv.first.as<std::string>() +
                               " must map to a list of strings");
    }
    for (const auto& a : kv.second) cmd.push_back(substitute(a.as<std::string>(), bin_dir));
    m.map_[kv.first.as<std::string>()] = cmd;
  }
  return m;
}

ImageMap ImageMap::defaults(const std::string& bin_dir) {
  ImageMap m;
  m.map_["nginx"] = {"nginx", "-g", "daemon off;"};
  m.map_["redis"] = {"redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"};
  m.map_["busybox"] = {"sh"};
  m.map_["lpk/demo-api"] = {bin_dir + "/lpk-kubesim-demo-api"};
  m.map_["lpk/lpk-agent"] = {bin_dir + "/../../agent/lpk-agent"};
  return m;
}

std::optional<std::vector<std::string>> ImageMap::command_for(const std::string& image) const {
  std::string repo = image_repository(image);
  auto it = map_.find(repo);
  if (it == map_.end()) {
    std::string last = repo.substr(repo.rfind('/') + 1);
    it = map_.find(last);
  }
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> container_argv(const std::vector<std::string>& image_cmd,
                                        const std::vector<std::string>& command,
                                        const std::vector<std::string>& args) {
  // The image's command is taken as entrypoint plus default args; only the first word is
  // the entrypoint when the pod gives args alone.
  if (!command.empty()) {
    std::vector<std::string> out = command;
    out.insert(out.end(), args.begin(), args.end());
    return out;
  }
  if (!args.empty()) {
    std::vector<std::string> out = {image_cmd.empty() ? "" : image_cmd[0]};
    out.insert(out.end(), args.begin(), args.end());
    return out;
  }
  return image_cmd;
}

}  // namespace lpk::kubesim
