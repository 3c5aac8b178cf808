#pragma once
// Where an lpk-proxy session keeps its logs, state, control socket and imported files, and the
// helpers that create them privately (directories 0700, files with secrets 0600).
//
//   logs      $TMPDIR/lpk/<session>/            (TMPDIR unset or empty: /tmp)
//   state     $XDG_STATE_HOME/lpk/              (unset: ~/.local/state/lpk/)
//   runtime   $XDG_RUNTIME_DIR/lpk/             (unset: $TMPDIR/lpk/run/)
//   control   <runtime>/<session>.sock
//   session   <runtime>/sessions/<session>/     imported files, under files/
//
// Imported files live under the runtime directory rather than the state directory because they
// hold the cluster's secrets: XDG_RUNTIME_DIR is a per-user tmpfs that the login manager wipes at
// logout, so a crashed session does not leave secrets on disk for ever.
//
// Every function reads the environment when called (nothing is cached), so tests can point
// TMPDIR and the XDG variables at a temporary directory.

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "proxy/tunnel/error.hpp"

namespace lpk::proxy {

/// $TMPDIR, or /tmp when it is unset or empty.
std::filesystem::path temp_root();
/// $TMPDIR/lpk/<session>/: the session's logs.
std::filesystem::path log_dir(std::string_view session);
/// $XDG_STATE_HOME/lpk/, else $HOME/.local/state/lpk/ (the home of the effective user when HOME
/// is unset).
std::filesystem::path state_dir();
/// $XDG_RUNTIME_DIR/lpk/, else $TMPDIR/lpk/run/.
std::filesystem::path runtime_dir();
/// <runtime>/sessions/<session>/: files imported from the cluster for this session.
std::filesystem::path session_dir(std::string_view session);
/// <runtime>/<session>.sock: the session's control socket.
std::filesystem::path control_socket_path(std::string_view session);

/// Creates `dir` and its missing parents with mode 0700. The directories lpk owns (every
/// component from the last one named `lpk` down, or `dir` alone when there is none) must be
/// real directories owned by the effective user; one with group or other bits is narrowed to
/// 0700. Returns a Problem (one sentence naming the path) when a directory cannot be created or
/// belongs to someone else, e.g. a /tmp/lpk made by another user.
tunnel::Result<void> make_private_dir(const std::filesystem::path& dir);

/// Opens `path` for writing, truncated, created with `mode` (a file that exists gets `mode`
/// too, through fchmod), never following a symlink at the last component. Returns the file
/// descriptor (close-on-exec) or -1 with errno set.
int open_private_file(const std::filesystem::path& path, unsigned mode = 0600);

/// Writes `bytes` to `path` through open_private_file; a Problem naming the path on any failure.
tunnel::Result<void> write_private_file(const std::filesystem::path& path, std::string_view bytes,
                                        unsigned mode = 0600);

}  // namespace lpk::proxy
