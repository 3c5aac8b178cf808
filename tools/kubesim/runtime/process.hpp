#pragma once
// Starting a container from a host program (the image map's fallback): a child process in
// the pod's network namespace, with its own PID, mount and UTS namespaces where resolv.conf,
// hosts, hostname and the volumes are bind-mounted, /run and /tmp are private tmpfs, and it
// dies with kubesim (PR_SET_PDEATHSIG).

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "tools/kubesim/runtime/volumes.hpp"

namespace lpk::kubesim {

struct ContainerSpec {
  std::vector<std::string> argv;
  std::string executable;  // the host file to run (argv[0] resolved by the kubelet)
  std::vector<std::pair<std::string, std::string>> env;
  std::string netns;  // name under /run/netns
  std::string hostname;
  std::string working_dir;  // "" = "/"
  std::string resolv_conf;  // host file bind-mounted on /etc/resolv.conf
  std::string hosts;        // host file bind-mounted on /etc/hosts
  std::vector<Mount> mounts;
  std::string log_file;  // stdout and stderr, when the fds below are not given
  int stdout_fd = -1;    // pipes the runtime reads (runtime/container_logs.hpp)
  int stderr_fd = -1;
};

/// True when path is under a directory the container gets a fresh tmpfs for (/tmp, /run),
/// so that the container cannot see the host's file there.
bool hidden_in_container(const std::string& path);

/// Forks and execs. Returns the pid (the leader of a new process group and the init of the
/// container's PID namespace: when it ends, every process of the container ends), or throws
/// std::runtime_error with the reason the child could not start ("exec nginx: No such
/// file or directory"). Mount targets that do not exist are created on the host first and
/// added to created_dirs so that cleanup can remove them. An executable under a path the
/// container's tmpfs hides (a build tree in /tmp) is bind-mounted back at the same path.
pid_t start_container(const ContainerSpec& spec, std::vector<std::string>& created_dirs);

/// The program a container started by start_container runs (the only child of its init),
/// as the host sees it; init itself when it has none (any more).
pid_t container_program(pid_t init);

namespace detail {
// For forked children (here and in oci_runtime.cpp), where only async-signal-safe calls may
// run: report "what: strerror(errno)" on pipe_fd and _exit(127).
[[noreturn]] void child_fail(int pipe_fd, const char* what);
// mkdir -p of path's parents (and of path itself, or an empty file when file is true).
void mkdirs_in_child(const std::string& path, bool file);
void run_as_init(int pipe_fd);
// In the parent, after fork (pid, possibly -1) and closing its copy of the write end: waits for
// the child's exec (report_fd reads EOF) and returns pid, or reaps it and throws what
// child_fail reported. Closes report_fd.
pid_t await_exec(pid_t pid, int report_fd);
}  // namespace detail

}  // namespace lpk::kubesim
