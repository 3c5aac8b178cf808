#pragma once
// What the env service (env.lpk.internal:1) reports: the agent process's environment (the
// container's, as the kubelet set it), the files under the container's volume mounts, the pod
// and the container. Pure apart from reading the file system; no I/O on sockets.
//
// Volume layout: configMap, secret, projected and downwardAPI volumes are written by the
// kubelet's atomic writer as `..<timestamp>/` (the data), `..data -> ..<timestamp>` and one
// visible symlink per key (`app.yaml -> ..data/app.yaml`). The walker reports the visible
// names and never the `..` entries of such a directory.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proxy/tunnel/agent_services.hpp"

namespace lpk::agent {

struct FileLimits {
  std::uint64_t per_file = 1024 * 1024;    ///< larger files are skipped
  std::uint64_t total = 16 * 1024 * 1024;  ///< once reached, the rest is skipped
  std::size_t max_entries = 100'000;       ///< files + skipped; bounds a huge emptyDir
  int max_depth = 32;
};

/// Paths as visible in the container: the mount path joined with the names.
struct FileReport {
  std::vector<tunnel::AgentFile> files;
  std::vector<tunnel::SkippedFile> skipped;
  std::uint64_t total_bytes = 0;
};

/// Walks every root (a directory, or a single file mounted with subPath), following symlinks
/// (loops are cut), in name order. Regular files within the limits are read; everything else
/// is listed in `skipped` with the reason.
FileReport collect_files(const std::vector<std::string>& roots, const FileLimits& limits);

/// The reason a walk gives a path that vanished while it walked (or a broken symlink).
inline constexpr const char* kMissingReason = "broken symlink or missing";

/// True when the walk met a path that vanished under it: a kubelet's atomic writer removes the
/// old data directory right after it swaps `..data`, so a walk that resolved the old one finds
/// nothing there. Such a walk is taken again before its absences are believed.
bool walk_met_missing(const FileReport& report);

/// From `before` to `after` (a FilesUpdate that is not `full`): the files that are new or
/// differ in bytes or mode, the paths that are gone (neither read nor skipped now), and the
/// skipped entries that were not skipped, or not for that reason, before.
tunnel::FilesUpdate files_changes(const FileReport& before, const FileReport& after);

/// True when files_changes has nothing to say.
bool no_changes(const tunnel::FilesUpdate& update);

struct EnvReportOptions {
  std::vector<std::string> mounts;  ///< --report-mounts
  FileLimits limits;
  std::string container;  ///< --container; empty when not told
  /// The tunnel's secret: a variable or a file whose value is this (with or without a trailing
  /// newline) is left out of the report, whatever its name, so that the developer's process
  /// never holds what lets a tunnel be opened. Empty: nothing is hidden by value.
  std::string tunnel_secret;
  std::vector<std::string> hidden_variables;  ///< --secret-env's variable: left out by name
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
  /// How often the files service looks at the mounts again (--files-poll). Kubelets rewrite a
  /// volume up to a minute after its object changed, so a few seconds more cost nothing.
  std::chrono::milliseconds files_poll{2'000};
};

/// The agent process's environment.
std::map<std::string, std::string> process_environment();

/// What the env service reports (tunnel::encode_environment makes it the document), less what
/// options.tunnel_secret and options.hidden_variables hide. Pod name:
/// POD_NAME, else HOSTNAME, else the host name; namespace: POD_NAMESPACE, else the service
/// account's namespace file.
tunnel::AgentEnvironment environment_report(const EnvReportOptions& options,
                                            const std::map<std::string, std::string>& env);

}  // namespace lpk::agent
