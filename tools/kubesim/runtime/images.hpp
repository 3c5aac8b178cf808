#pragma once
// Container images are local commands: a YAML map from image name (without registry, tag
// or digest) to the command that stands for its entrypoint and default arguments.
//   nginx: ["nginx", "-g", "daemon off;"]
//   lpk/demo-api: ["@BIN@/lpk-kubesim-demo-api"]     # @BIN@ = directory of lpk-kubesim

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lpk::kubesim {

class ImageMap {
 public:
  /// Loads the map; throws std::runtime_error naming the file and the problem.
  static ImageMap load(const std::filesystem::path& file, const std::string& bin_dir);
  /// The built-in map used without --images.
  static ImageMap defaults(const std::string& bin_dir);

  /// The command for image ("docker.io/library/nginx:1.27" finds "nginx").
  std::optional<std::vector<std::string>> command_for(const std::string& image) const;

 private:
  std::map<std::string, std::vector<std::string>> map_;
};

/// "registry.example.com:5000/team/app:1.2@sha256:..." -> "team/app"; "docker.io/nginx" -> "nginx".
std::string image_repository(const std::string& image);

/// The argv a container runs: command/args override the image's entrypoint and arguments
/// as in the Kubernetes "Define a Command and Arguments" rules.
std::vector<std::string> container_argv(const std::vector<std::string>& image_cmd,
                                        const std::vector<std::string>& command,
                                        const std::vector<std::string>& args);

}  // namespace lpk::kubesim
