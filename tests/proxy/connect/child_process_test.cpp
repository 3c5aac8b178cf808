#include "proxy/connect/child_process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>

#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::vector<std::string> kEnv = {"PATH=/usr/local/bin:/usr/bin:/bin"};

// Runs `work` on `io` until it completes (bounded) and returns its result, -1 if it did not.
int run(asio::io_context& io, asio::awaitable<int> work) {
  std::optional<int> code;
  asio::co_spawn(io, std::move(work), [&](std::exception_ptr e, int c) {
    if (!e) code = c;
  });
  io.run_for(20s);
  return code.value_or(-1);
}

int exit_code(const std::vector<std::string>& argv, const std::vector<std::string>& env = kEnv) {
  asio::io_context io;
  auto child = ChildProcess::start(io.get_executor(), argv, env);
  return run(io, child->wait());
}

class ChildProcessTest : public ::testing::Test {
 protected:
  fs::path script(const std::string& name, const std::string& text, unsigned mode) {
    auto path = dir_ / name;
    std::ofstream(path) << text;
    fs::permissions(path, static_cast<fs::perms>(mode));
    return path;
  }
  lpk::test::TempDir tmp_{"lpk-child-test-"};
  const fs::path dir_{tmp_.path()};
};

TEST_F(ChildProcessTest, ExitCodesPassThrough) {
  EXPECT_EQ(exit_code({"sh", "-c", "exit 0"}), 0);
  EXPECT_EQ(exit_code({"sh", "-c", "exit 3"}), 3);
  EXPECT_EQ(exit_code({"/bin/sh", "-c", "exit 255"}), 255);
}

TEST_F(ChildProcessTest, ASignalledChildIs128PlusTheSignal) {
  EXPECT_EQ(exit_code({"sh", "-c", "kill -TERM $$"}), 128 + SIGTERM);
  EXPECT_EQ(exit_code({"sh", "-c", "kill -KILL $$"}), 128 + SIGKILL);
}

TEST_F(ChildProcessTest, MissingCommandIs127WithOneLine) {
  asio::io_context io;
  try {
    ChildProcess::start(io.get_executor(), {"lpk-no-such-command", "x"}, kEnv);
    FAIL() << "started a command that does not exist";
  } catch (const SpawnError& e) {
    EXPECT_EQ(e.exit_code(), 127);
    EXPECT_STREQ(e.what(), "lpk-no-such-command: command not found");
  }
  try {
    ChildProcess::start(io.get_executor(), {(dir_ / "nothing-here").string()}, kEnv);
    FAIL() << "started a path that does not exist";
  } catch (const SpawnError& e) {
    EXPECT_EQ(e.exit_code(), 127);
  }
  EXPECT_THROW(ChildProcess::start(io.get_executor(), {}, kEnv), SpawnError);
}

TEST_F(ChildProcessTest, NotExecutableIs126) {
  // execve refuses a file without any x bit even to root, so this holds as root too.
  auto path = script("data.txt", "#!/bin/sh\nexit 0\n", 0644);
  asio::io_context io;
  try {
    ChildProcess::start(io.get_executor(), {path.string()}, kEnv);
    FAIL() << "ran a file without execute permission";
  } catch (const SpawnError& e) {
    EXPECT_EQ(e.exit_code(), 126);
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }
}

TEST_F(ChildProcessTest, LooksUpThePathOfTheChildEnvironment) {
  script("lpk-tool", "#!/bin/sh\nexit 7\n", 0755);
  script("lpk-plain", "exit 9\n", 0755);  // no #!: run by /bin/sh, as execvpe does
  std::vector<std::string> env = {"PATH=/nonexistent:" + dir_.string()};
  EXPECT_EQ(exit_code({"lpk-tool"}, env), 7);
  EXPECT_EQ(exit_code({"lpk-plain", "ignored-arg"}, env), 9);
  // The parent's PATH does not have the directory: the lookup used the child's.
  asio::io_context io;
  EXPECT_THROW(ChildProcess::start(io.get_executor(), {"lpk-tool"}, kEnv), SpawnError);
}

TEST_F(ChildProcessTest, GetsExactlyTheGivenEnvironmentAndArguments) {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "FOO=bar baz", "EMPTY="};
  EXPECT_EQ(exit_code({"sh", "-c",
                       "test \"$FOO\" = 'bar baz' && test -z \"$HOME\" && test \"${EMPTY-unset}\" "
                       "= '' && test \"$1\" = 'a b'",
                       "sh", "a b"},
                      env),
            0);
}

TEST_F(ChildProcessTest, SignalsAreResetForTheChild) {
  // lpk-proxy ignores SIGPIPE and its threads may block signals; the child must not inherit that.
  struct sigaction ignore {
  }, old_pipe{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  sigset_t term, old_mask;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old_mask);
  int piped = exit_code({"sh", "-c", "kill -PIPE $$; exit 0"});
  int termed = exit_code({"sh", "-c", "kill -TERM $$; exit 0"});
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  EXPECT_EQ(piped, 128 + SIGPIPE);
  EXPECT_EQ(termed, 128 + SIGTERM);
}

TEST_F(ChildProcessTest, InheritsOnlyStdinStdoutAndStderr) {
  // Descriptors lpk-proxy opens without close-on-exec (Asio's sockets, libraries' files) must
  // not reach the command: a listener it held would stay bound after lpk-proxy died.
  int plain = ::open("/dev/null", O_RDONLY);
  int socket = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(plain, 3);
  ASSERT_GE(socket, 3);
  auto check = "test ! -e /proc/$$/fd/" + std::to_string(plain) + " && test ! -e /proc/$$/fd/" +
               std::to_string(socket) + " && test -e /proc/$$/fd/2";
  EXPECT_EQ(exit_code({"sh", "-c", check}), 0);
  ::close(plain);
  ::close(socket);
}

TEST_F(ChildProcessTest, GetsSigtermWhenLpkProxyDies) {
  // A stand-in for lpk-proxy starts the child and dies at once; this test process, as the
  // subreaper, inherits the orphan and sees how it ended.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int pids[2];
  ASSERT_EQ(pipe(pids), 0);
  pid_t proxy = fork();
  if (proxy == 0) {
    asio::io_context io;
    auto child = ChildProcess::start(io.get_executor(), {"sleep", "30"}, kEnv);
    pid_t pid = child->pid();
    (void)!write(pids[1], &pid, sizeof pid);
    _exit(0);
  }
  ::close(pids[1]);
  pid_t child = 0;
  ASSERT_EQ(read(pids[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::close(pids[0]);
  int status = 0;
  ASSERT_EQ(waitpid(proxy, &status, 0), proxy);
  // The orphan is ours now; it must end by SIGTERM, long before sleep's 30 s.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  pid_t done = 0;
  while ((done = waitpid(child, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    usleep(10'000);  // an exit has no event to wait on but its status
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL() << "the child outlived lpk-proxy";
  }
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

TEST_F(ChildProcessTest, StaysInTheForegroundProcessGroup) {
  asio::io_context io;
  auto child = ChildProcess::start(io.get_executor(), {"sleep", "30"}, kEnv);
  EXPECT_EQ(getpgid(child->pid()), getpgrp());
  EXPECT_EQ(run(io, child->terminate(5s)), 128 + SIGTERM);
}

TEST_F(ChildProcessTest, SeveralWaitersGetTheSameCode) {
  asio::io_context io;
  auto child = ChildProcess::start(io.get_executor(), {"sh", "-c", "exit 5"}, kEnv);
  std::vector<int> codes;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(io, child->wait(), [&](std::exception_ptr, int c) { codes.push_back(c); });
  }
  io.run_for(20s);
  EXPECT_EQ(codes, (std::vector<int>{5, 5, 5}));
  EXPECT_EQ(child->exit_code(), 5);
  EXPECT_FALSE(child->signal(SIGTERM));  // reaped: nothing to signal
}

TEST_F(ChildProcessTest, TerminateEscalatesToKillAfterTheGrace) {
  auto fifo = dir_ / "ready";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::vector<std::string> env = kEnv;
  env.push_back("READY=" + fifo.string());
  asio::io_context io;
  // The child ignores SIGTERM (and so does sleep, exec'd with the ignored disposition).
  auto child = ChildProcess::start(
      io.get_executor(), {"sh", "-c", "trap '' TERM; echo ready > \"$READY\"; exec sleep 30"}, env);
  // Wait for the trap to be in place: the fifo opens once the child writes to it.
  int fd = open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char buffer[16];
  EXPECT_GT(read(fd, buffer, sizeof buffer), 0);
  close(fd);
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(run(io, child->terminate(100ms)), 128 + SIGKILL);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 100ms);
}

TEST_F(ChildProcessTest, TerminateOfAnExitedChildReturnsItsCode) {
  asio::io_context io;
  auto child = ChildProcess::start(io.get_executor(), {"sh", "-c", "exit 4"}, kEnv);
  EXPECT_EQ(run(io, child->wait()), 4);
  io.restart();
  EXPECT_EQ(run(io, child->terminate(1s)), 4);
}

TEST_F(ChildProcessTest, ARunningChildDiesWithItsIoContext) {
  pid_t pid = 0;
  {
    asio::io_context io;
    auto child = ChildProcess::start(io.get_executor(), {"sleep", "30"}, kEnv);
    pid = child->pid();
    io.poll();  // the watcher is registered and waiting
    EXPECT_EQ(kill(pid, 0), 0);
  }
  // Killed and reaped: the pid no longer exists (not even as a zombie).
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(ExitCodeOf, MatchesTheShell) {
  EXPECT_EQ(exit_code_of(0), 0);
  EXPECT_EQ(exit_code_of(3 << 8), 3);
  EXPECT_EQ(exit_code_of(SIGINT), 128 + SIGINT);
}

TEST_F(ChildProcessTest, OutputGoesToTheGivenDescriptor) {
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  asio::io_context io;
  auto child = ChildProcess::start(io.get_executor(), {"sh", "-c", "echo to-out; echo to-err >&2"},
                                   kEnv, out[1]);
  ::close(out[1]);
  EXPECT_EQ(run(io, child->wait()), 0);
  std::string text(256, '\0');
  text.resize(std::max<ssize_t>(0, read(out[0], text.data(), text.size())));
  ::close(out[0]);
  EXPECT_EQ(text, "to-out\nto-err\n") << "stdout and stderr both";
}

TEST_F(ChildProcessTest, OwnGroupTerminateReachesTheShellsChildren) {
  // A --run command line: a shell whose child would outlive it if only the shell got SIGTERM.
  auto marker = dir_ / "grandchild.pid";
  asio::io_context io;
  auto child = ChildProcess::start(
      io.get_executor(), {"sh", "-c", "sleep 30 & echo $! > " + marker.string() + "; wait"}, kEnv,
      -1, true);
  EXPECT_EQ(getpgid(child->pid()), child->pid());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!fs::exists(marker) &&
         std::chrono::steady_clock::now() < deadline) {
    usleep(10'000);  // the shell writes it once it has started the sleep
  }
  std::optional<int> code;
  asio::co_spawn(io, child->terminate(5s), [&](std::exception_ptr, int c) { code = c; });
  io.run_for(20s);
  ASSERT_TRUE(code);
  pid_t grandchild = 0;
  std::ifstream(marker) >> grandchild;
  ASSERT_GT(grandchild, 0);
  // The sleep was the shell's child, reparented when the shell died: it must go (or be a
  // zombie) soon, long before its 30 s.
  auto gone = [grandchild] {
    if (kill(grandchild, 0) != 0) return true;
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string pid_text, comm, state;
    stat >> pid_text >> comm >> state;
    return state == "Z" || state.empty();
  };
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!gone() && std::chrono::steady_clock::now() < until) {
    usleep(10'000);  // a process's end has no event to wait on here
  }
  EXPECT_TRUE(gone()) << "sleep " << grandchild << " outlived terminate()";
  kill(grandchild, SIGKILL);
}

}  // namespace
}  // namespace lpk::proxy
