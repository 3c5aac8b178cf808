#pragma once
// An lpk-kubesim process for tests: `up --no-runtime` (the API and controllers, pods reported
// Running and Ready without processes, no root needed) in a temporary state directory. Tests
// name the binary with $LPK_KUBESIM (ctest sets it) and skip when it is unset.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/kube/test_util.hpp"

extern char** environ;

namespace lpk::kube::test {

class Kubesim {
 public:
  /// Starts `bin` and waits (up to 120 s) for its "serving" line; throws with what it printed.
  explicit Kubesim(const std::string& bin) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    std::vector<std::string> args{
        bin, "up", "--no-runtime", "--state", state.path(), "--watch-history", "50"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) throw std::runtime_error("cannot start " + bin);
    out_ = fds[0];
    std::string line = read_line(std::chrono::seconds(120));
    std::smatch m;
    if (!std::regex_search(line, m,
                           std::regex(R"(serving https://127.0.0.1:(\d+) kubeconfig (\S+))"))) {
      stop();
      throw std::runtime_error("kubesim did not start: " + line);
    }
    port = std::stoi(m[1]);
    kubeconfig = m[2];
  }
  ~Kubesim() { stop(); }
  Kubesim(const Kubesim&) = delete;
  Kubesim& operator=(const Kubesim&) = delete;

  /// SIGTERM, then waits for the exit; returns the wait status (idempotent).
  int stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
    return status_;
  }
  std::string file(const std::string& name) const { return state / name; }

  TempDir state;
  int port = 0;
  std::string kubeconfig;

 private:
  std::string read_line(std::chrono::seconds limit) {
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + limit;
    char c;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      if (::read(out_, &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    return line;
  }
  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = 0;
};

}  // namespace lpk::kube::test
