#pragma once
// An lpk-kubesim process for tests: `up --no-runtime` (the API and controllers, pods reported
// Running and Ready without processes, no root needed) in a temporary state directory. Tests
// name the binary with $LPK_KUBESIM (ctest sets it) and skip when it is unset. Its output is
// read to the end (a pipe nobody reads would block it once full) and kept for the message when
// it does not stop cleanly.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/slack.hpp"
#include "tests/temp_dir.hpp"

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
    drain_ = std::thread([this] {
      char buf[4096];
      for (ssize_t n; (n = ::read(out_, buf, sizeof buf)) > 0;) {
        std::lock_guard lock(output_mutex_);
        output_.append(buf, std::size_t(n));
      }
    });
  }
  ~Kubesim() { stop(); }
  Kubesim(const Kubesim&) = delete;
  Kubesim& operator=(const Kubesim&) = delete;

  /// SIGTERM, as Ctrl-C would send; "" when kubesim exited 0 within 30 s (stretched by the
  /// build's slack), else what happened and its output. Idempotent.
  std::string stop() {
    if (pid_ < 0) return result_;
    ::kill(pid_, SIGTERM);
    int st = 0;
    const auto deadline = std::chrono::steady_clock::now() + slack(std::chrono::seconds(30));
    pid_t done = 0;
    while ((done = ::waitpid(pid_, &st, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd none{-1, 0, 0};
      ::poll(&none, 0, 50);  // the exit has no event to wait on but its status
    }
    if (done == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      result_ = "did not exit within 30 s of SIGTERM (killed)";
    } else if (WIFSIGNALED(st)) {
      result_ = "died of signal " + std::to_string(WTERMSIG(st)) + " after SIGTERM";
    } else if (WEXITSTATUS(st) != 0) {
      result_ = "exited " + std::to_string(WEXITSTATUS(st)) + " after SIGTERM";
    }
    pid_ = -1;
    if (drain_.joinable()) drain_.join();
    if (out_ >= 0) ::close(out_);
    out_ = -1;
    if (!result_.empty()) {
      std::lock_guard lock(output_mutex_);
      result_ = "lpk-kubesim " + result_ + "; its output:\n" + output_;
    }
    return result_;
  }
  std::string file(const std::string& name) const { return state / name; }

  lpk::test::TempDir state;
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
  std::thread drain_;
  std::mutex output_mutex_;
  std::string output_;
  std::string result_;
};

}  // namespace lpk::kube::test
