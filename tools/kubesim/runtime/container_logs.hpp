#pragma once
// A container's output as the runtime keeps it: its stdout and stderr are pipes that kubesim
// reads; every line goes to the CRI log file of that container instance, in the format
// kubelet reads back for `kubectl logs` (k/k pkg/kubelet/kuberuntime/logs/logs.go):
//   2026-12-06T01:09:33.123456789Z stdout F the line
// ("P" for a piece of a line longer than 16 KiB), and the raw bytes also go on to the pod's
// plain <container>.log, as before.

#include <boost/asio.hpp>
#include <filesystem>
#include <memory>
#include <string>

namespace lpk::kubesim {

/// "2026-12-06T01:09:33.123456789Z": RFC 3339 with nine fraction digits, UTC.
std::string rfc3339_nano_fixed(std::chrono::system_clock::time_point t);

/// One CRI log line for a chunk of stream "stdout" or "stderr" (no newline in text).
std::string cri_log_line(std::chrono::system_clock::time_point t, const std::string& stream,
                         bool partial, const std::string& text);

class ContainerOutput {
 public:
  /// Makes the two pipes. Throws std::runtime_error when it cannot.
  ContainerOutput(boost::asio::io_context& io, std::filesystem::path raw_log,
                  std::filesystem::path cri_log);
  ~ContainerOutput();
  /// The write ends the container's stdout and stderr become.
  int stdout_fd() const { return write_fds_[0]; }
  int stderr_fd() const { return write_fds_[1]; }
  /// After the fork: closes the write ends here and reads the pipes until both end.
  /// The readers keep this object alive until then.
  static void start(std::shared_ptr<ContainerOutput> self);
  /// Ends the readers now (kubesim is stopping).
  void close();

 private:
  struct Stream;
  boost::asio::awaitable<void> read(std::shared_ptr<ContainerOutput> self, int index);
  void append(int index, const char* data, size_t n, bool eof);

  boost::asio::io_context& io_;
  std::filesystem::path raw_log_, cri_log_;
  int write_fds_[2] = {-1, -1};
  std::unique_ptr<Stream> streams_[2];
  std::string pending_[2];
};

}  // namespace lpk::kubesim
