#pragma once
// What the env service (env.lpk.internal:1) reports: the agent process's environment (the
// container's, as the kubelet set it), the files under the container's volume mounts, the pod
// and the container. Pure apart from reading the file system; no I/O on sockets.
//
// Volume layout: configMap, secret, projected and downwardAPI volumes are written by the
// kubelet's atomic writer as `..<timestamp>/` (the data), `..data -> ..<timestamp>` and one
// visible symlink per key (`app.yaml -> ..data/app.yaml`). The walker reports the visible
// names and never the `..` entries of such a directory.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lpk::agent {

struct FileLimits {
  std::uint64_t per_file = 1024 * 1024;    ///< larger files are skipped
  std::uint64_t total = 16 * 1024 * 1024;  ///< once reached, the rest is skipped
  std::size_t max_entries = 100'000;       ///< files + skipped; bounds a huge emptyDir
  int max_depth = 32;
};

struct ReportedFile {
  std::string path;  ///< as visible in the container: the mount path joined with the names
  std::uint32_t mode = 0;
  std::string bytes;
};

struct SkippedFile {
  std::string path;
  std::string reason;
};

struct FileReport {
  std::vector<ReportedFile> files;
  std::vector<SkippedFile> skipped;
  std::uint64_t total_bytes = 0;
};

/// Walks every root (a directory, or a single file mounted with subPath), following symlinks
/// (loops are cut), in name order. Regular files within the limits are read; everything else
/// is listed in `skipped` with the reason.
FileReport collect_files(const std::vector<std::string>& roots, const FileLimits& limits);

struct EnvReportOptions {
  std::vector<std::string> mounts;  ///< --report-mounts
  FileLimits limits;
  std::string container;  ///< --container; empty when not told
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};

/// The agent process's environment.
std::map<std::string, std::string> process_environment();

/// The env service's JSON document (docs/protocol.md §7). Pod name: POD_NAME, else HOSTNAME,
/// else the host name; namespace: POD_NAMESPACE, else the service account's namespace file.
/// Bytes that are not UTF-8 in names or values become U+FFFD (file contents are base64).
std::string environment_document(const EnvReportOptions& options,
                                 const std::map<std::string, std::string>& env);

std::string base64_encode(const std::string& bytes);

}  // namespace lpk::agent
