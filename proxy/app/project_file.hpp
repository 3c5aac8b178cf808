#pragma once
// lpk.yaml, the project file: what `lpk-proxy connect` should do in this repository, so that a
// developer types `lpk-proxy connect` (or `kubectl lpk connect`) instead of a line of flags.
// docs/project-file.md describes it and docs/lpk.schema.json is its JSON Schema.
//
// Each setting of the file stands for a connect flag, and is kept as that flag: the file's
// settings become a command line that goes before the user's own, minus the flags the user
// gives (flags override the file), and parse_connect_options reads it as usual. One parser,
// one set of rules; the file only adds where each value came from (line and column).
//
// Pure but for reading files and the current directory.

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lpk::proxy {

inline constexpr const char* kProjectFileName = "lpk.yaml";

/// A place in the file, 1-based (0: the file as a whole).
struct FileMark {
  int line = 0;
  int column = 0;
};

/// One setting of the file as the connect flag it stands for (`value` empty for a switch).
struct ProjectSetting {
  std::string flag;
  std::string value;
  FileMark mark;
  bool is_switch = false;
};

/// One entry of `services:`.
struct ProjectService {
  std::string name;
  FileMark mark;
  std::vector<ProjectSetting> settings;  ///< --container, --local-port, --env
  std::vector<std::string> run;          ///< the command (started in the file's folder); or none
};

struct ProjectFile {
  std::filesystem::path path;
  std::vector<ProjectSetting> settings;  ///< of the session: -n, --context, --dns ...
  std::vector<ProjectService> services;
};

struct ProjectError {
  FileMark mark;
  std::string message;
};

struct LoadedProject {
  ProjectFile file;
  std::vector<ProjectError> errors;  ///< every error found, in file order; empty: usable
};

/// Reads `text` as the contents of `path` (relative paths in it are taken from its folder) and
/// checks every value with connect's own flag parser.
LoadedProject parse_project_file(std::string_view text, const std::filesystem::path& path);

/// parse_project_file of the file at `path`; an unreadable file is one error.
LoadedProject load_project_file(const std::filesystem::path& path);

/// lpk.yaml in `start` or the nearest folder above it. The search stops at the first folder
/// holding `.git` (a repository's root: a file above it belongs to something else) or at /.
std::optional<std::filesystem::path> find_project_file(const std::filesystem::path& start);

/// "PATH:LINE:COLUMN: MESSAGE" (as compilers print, so that editors jump to it).
std::string describe_error(const std::filesystem::path& path, const ProjectError& error);

/// connect's command line with the project file laid under it: `--config FILE` or the lpk.yaml
/// found from the current folder (none with `--no-config`) supplies every setting that `args`
/// do not give, and its service's `run` when `args` have no `-- COMMAND`. `used` is set to the
/// file read, if any. Throws std::invalid_argument (one line) for a file with errors or a choice
/// it cannot make (several services and no --service).
std::vector<std::string> with_project_file(std::span<const std::string> args,
                                           std::optional<std::filesystem::path>& used);

}  // namespace lpk::proxy
