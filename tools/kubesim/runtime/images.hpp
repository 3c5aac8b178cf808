#pragma once
// The host-binary map: the fallback for images the image store (image_store.hpp) does not
// have, run as host programs and reported as such in the pod's status. Such an image is a
// local command, what its config says a container runs:
// an entrypoint, a default cmd, and the programs the image puts on its PATH. The map comes
// from a YAML file (--images) or the built-in defaults:
//   nginx: ["nginx", "-g", "daemon off;"]             # short form: entrypoint + cmd
//   busybox: {cmd: ["sh"]}                             # no entrypoint, as the real image
//   lpk/lpk-agent:                                     # `command: [lpk-agent]` finds it
//     entrypoint: ["lpk-agent"]
//     binaries: {lpk-agent: "@AGENT@"}
// Placeholders: @BIN@ = directory of lpk-kubesim, @AGENT@ = the built lpk-agent,
// @DEMO_API@ = the built lpk-kubesim-demo-api.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lpk::kubesim {

struct Image {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  /// Program name -> host path: the files the image has on its PATH. A container whose
  /// argv[0] is one of these names runs that file.
  std::map<std::string, std::string> binaries;
};

/// Where kubesim's own programs are, whatever the build directory is called.
struct ImagePaths {
  std::string bin_dir;   // directory of the running lpk-kubesim
  std::string agent;     // lpk-agent
  std::string demo_api;  // lpk-kubesim-demo-api
  /// Looks next to lpk-kubesim, in the build tree it was built in, then on PATH.
  static ImagePaths discover(const std::string& bin_dir);
};

class ImageMap {
 public:
  /// Loads the map; throws std::runtime_error naming the file and the problem.
  static ImageMap load(const std::filesystem::path& file, const ImagePaths& paths);
  /// The built-in map used without --images.
  static ImageMap defaults(const ImagePaths& paths);

  /// The image ("docker.io/library/nginx:1.27" finds "nginx"), nullopt when not mapped.
  std::optional<Image> find(const std::string& image) const;

 private:
  std::map<std::string, Image> map_;
};

/// "registry.example.com:5000/team/app:1.2@sha256:..." -> "team/app"; "docker.io/nginx" -> "nginx".
std::string image_repository(const std::string& image);

/// The argv a container runs, by the Kubernetes rules ("Define a Command and Arguments"):
/// command replaces the image's entrypoint and drops its cmd; args replace the cmd.
/// Empty when neither the image nor the pod names a program.
std::vector<std::string> container_argv(const Image& image, const std::vector<std::string>& command,
                                        const std::vector<std::string>& args);

/// The file execvp would run for argv0 with this PATH; argv0 itself when it has a '/';
/// "" when no PATH entry has an executable of that name.
std::string resolve_executable(const std::string& argv0, const std::string& path_var);

}  // namespace lpk::kubesim
