#pragma once
// The developer's copy of the container's mounted files, kept current while the session runs.
// Kubelets rewrite configMap, secret and projected volumes when their objects change and before
// a projected service-account token expires; the agent's files service (files.lpk.internal:1)
// sends every file, then each change. FileMirror applies those messages under
// <session dir>/files, replacing each file atomically (a reader sees the old bytes or the new,
// never a mix, as in the pod), and follow_files reads the stream.
//
// Threading: one io_context thread; FileMirror is plain and synchronous (the files are small).

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "proxy/forward/forwarder.hpp"
#include "proxy/tunnel/agent_services.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::proxy {

/// What one FileMirror::apply did, in container paths.
struct MirrorChange {
  std::vector<std::string> written;
  std::vector<std::string> removed;
  std::vector<std::pair<std::string, std::string>> failed;  ///< path, reason
  std::vector<std::string> skipped;  ///< files the session was told not to import
  bool empty() const { return written.empty() && removed.empty() && failed.empty(); }
};

class FileMirror {
 public:
  /// `root` is created 0700 on the first apply. A file at or under a path of `skip` (container
  /// paths: `--skip-file`, lpk.yaml's files.skip) is never written here.
  explicit FileMirror(std::filesystem::path root, std::vector<std::string> skip = {});

  /// Writes the files of `update` (write_imported_file's rules) and removes its `removed`; a
  /// `full` update also removes every file it wrote before that `update` does not list. A file
  /// whose bytes and mode are those it wrote already is left alone.
  MirrorChange apply(const tunnel::FilesUpdate& update);

  const std::filesystem::path& root() const { return root_; }
  std::size_t size() const { return held_.size(); }

 private:
  struct Held {
    std::uint32_t mode;
    std::string bytes;
  };
  void write(const tunnel::AgentFile& file, MirrorChange& change);
  void remove(const std::string& path, MirrorChange& change);

  bool skipped(const std::string& path) const;

  std::filesystem::path root_;
  std::vector<std::string> skip_;
  std::map<std::string, Held> held_;  // by container path: what is on disk now
};

struct FollowOptions {
  std::size_t max_line = 64 * 1024 * 1024;  ///< the agent sends at most 16 MiB of files
};

/// Why follow_files returned, and whether the agent answered at all (an agent older than the
/// files service refuses the stream before the first message).
struct FollowEnd {
  tunnel::Problem why;
  std::uint64_t messages = 0;
};

/// Opens files.lpk.internal:1 through `open` and applies every message to `mirror`, calling
/// `changed` after each one that changed something, until the stream ends or a message is
/// malformed (the stream is then closed: a mirror half-updated from a broken stream is
/// corrected by the next stream's full message).
boost::asio::awaitable<FollowEnd> follow_files(OpenStream open, FileMirror& mirror,
                                               std::function<void(const MirrorChange&)> changed,
                                               FollowOptions options = {});

}  // namespace lpk::proxy
