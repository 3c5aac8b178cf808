#pragma once
// Logs of an lpk-proxy session: everything at `level` and above into
// $TMPDIR/lpk/<session>/proxy.log (log_dir() of session_paths.hpp, a 0700 directory), and warnings
// (or everything, at debug and trace) on stderr.

#include <string>

namespace lpk::proxy {

/// Returns the log file's path, or an empty string when it could not be created (then
/// stderr is the only sink, and a warning says so).
std::string setup_logging(const std::string& session, const std::string& level);

}  // namespace lpk::proxy
