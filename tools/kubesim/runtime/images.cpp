#include "tools/kubesim/runtime/images.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <stdexcept>

namespace lpk::kubesim {

namespace fs = std::filesystem;

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

std::string resolve_executable(const std::string& argv0, const std::string& path_var) {
  if (argv0.empty()) return "";
  if (argv0.find('/') != std::string::npos) return argv0;
  size_t pos = 0;
  while (pos <= path_var.size()) {
    size_t colon = path_var.find(':', pos);
    if (colon == std::string::npos) colon = path_var.size();
    std::string dir = path_var.substr(pos, colon - pos);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + argv0;
    std::error_code ec;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate, ec)) {
      return candidate;
    }
    pos = colon + 1;
  }
  return "";
}

namespace {

bool executable(const fs::path& p) {
  std::error_code ec;
  return !p.empty() && fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
}

// The first candidate that is an executable file, else the first non-empty one (so that a
// failed start names the path kubesim expected).
std::string first_executable(const std::vector<fs::path>& candidates) {
  for (const auto& c : candidates) {
    if (executable(c)) return fs::weakly_canonical(c).string();
  }
  for (const auto& c : candidates) {
    if (!c.empty()) return c.string();
  }
  return "";
}

#ifndef LPK_KUBESIM_AGENT_PATH
#define LPK_KUBESIM_AGENT_PATH ""
#endif
#ifndef LPK_KUBESIM_DEMO_API_PATH
#define LPK_KUBESIM_DEMO_API_PATH ""
#endif

std::string substitute(std::string s, const ImagePaths& paths) {
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"@BIN@", paths.bin_dir},
                                   {"@AGENT@", paths.agent},
                                   {"@DEMO_API@", paths.demo_api}}) {
    for (size_t p; (p = s.find(key)) != std::string::npos;) s.replace(p, key.size(), value);
  }
  return s;
}

std::vector<std::string> string_list(const YAML::Node& n, const std::string& what,
                                     const ImagePaths& paths) {
  if (!n) return {};
  if (!n.IsSequence()) throw std::runtime_error(what + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& a : n) out.push_back(substitute(a.as<std::string>(), paths));
  return out;
}

Image parse_image(const std::string& name, const YAML::Node& n, const ImagePaths& paths) {
  Image img;
  if (n.IsSequence()) {
    // Short form: the first word is the entrypoint, the rest the default cmd.
    auto words = string_list(n, name, paths);
    if (!words.empty()) img.entrypoint = {words[0]};
    img.cmd.assign(words.begin() + (words.empty() ? 0 : 1), words.end());
    return img;
  }
  if (!n.IsMap()) {
    throw std::runtime_error(name + " must map to a list or to {entrypoint, cmd, binaries}");
  }
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    if (key != "entrypoint" && key != "cmd" && key != "binaries") {
      throw std::runtime_error(name + ": unknown key '" + key + "'");
    }
  }
  img.entrypoint = string_list(n["entrypoint"], name + ".entrypoint", paths);
  img.cmd = string_list(n["cmd"], name + ".cmd", paths);
  if (const auto& b = n["binaries"]) {
    if (!b.IsMap()) throw std::runtime_error(name + ".binaries must map names to paths");
    for (const auto& kv : b) {
      img.binaries[kv.first.as<std::string>()] = substitute(kv.second.as<std::string>(), paths);
    }
  }
  return img;
}

}  // namespace

ImagePaths ImagePaths::discover(const std::string& bin_dir) {
  ImagePaths p;
  p.bin_dir = bin_dir;
  fs::path bin(bin_dir);
  const char* path_env = std::getenv("PATH");
  std::string on_path = resolve_executable("lpk-agent", path_env ? path_env : "");
  // Installed side by side, then the build tree lpk-kubesim was built in (recorded at
  // build time), then the same layout relative to this binary (a moved build tree), PATH.
  p.agent = first_executable({bin / "lpk-agent", LPK_KUBESIM_AGENT_PATH,
                              bin / ".." / ".." / "agent" / "lpk-agent", on_path});
  p.demo_api = first_executable({bin / "lpk-kubesim-demo-api", LPK_KUBESIM_DEMO_API_PATH});
  return p;
}

ImageMap ImageMap::load(const fs::path& file, const ImagePaths& paths) {
  ImageMap m;
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read image map " + file.string() + ": " + e.what());
  }
  if (!root.IsMap()) throw std::runtime_error("image map " + file.string() + " is not a map");
  for (const auto& kv : root) {
    std::string name = kv.first.as<std::string>();
    try {
      m.map_[name] = parse_image(name, kv.second, paths);
    } catch (const std::exception& e) {
      throw std::runtime_error("image map " + file.string() + ": " + e.what());
    }
  }
  return m;
}

ImageMap ImageMap::defaults(const ImagePaths& paths) {
  ImageMap m;
  m.map_["nginx"] = {{}, {"nginx", "-g", "daemon off;"}, {}};
  // The real image's entrypoint turns leading flags into redis-server arguments.
  m.map_["redis"] = {
      {"redis-server"}, {"--save", "", "--appendonly", "no", "--protected-mode", "no"}, {}};
  m.map_["busybox"] = {{}, {"sh"}, {}};
  m.map_["lpk/demo-api"] = {{paths.demo_api}, {}, {}};
  m.map_["lpk/lpk-agent"] = {{"lpk-agent"}, {}, {{"lpk-agent", paths.agent}}};
  return m;
}

std::optional<Image> ImageMap::find(const std::string& image) const {
  std::string repo = image_repository(image);
  auto it = map_.find(repo);
  if (it == map_.end()) it = map_.find(repo.substr(repo.rfind('/') + 1));
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> container_argv(const Image& image, const std::vector<std::string>& command,
                                        const std::vector<std::string>& args) {
  std::vector<std::string> out = command.empty() ? image.entrypoint : command;
  const auto& tail = !args.empty() ? args : (command.empty() ? image.cmd : args);
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

}  // namespace lpk::kubesim
