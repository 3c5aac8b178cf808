#pragma once
// Logs of an lpk-proxy session: everything at `level` and above into
// $TMPDIR/lpk/<session>/proxy.log (log_dir() of session_paths.hpp, a 0700 directory), and warnings
// (or everything, at debug and trace) on stderr.

#include <spdlog/formatter.h>

#include <memory>
#include <string>

namespace lpk::proxy {

/// The formatter of --log-format json (one JSON object per line; see setup_logging).
std::unique_ptr<spdlog::formatter> json_line_formatter();

/// Returns the log file's path, or an empty string when it could not be created (then
/// stderr is the only sink, and a warning says so). `json` (--log-format json): every line of
/// both sinks is one JSON object, {"ts": "2026-12-06T19:20:46.123Z", "level": "info",
/// "msg": "..."} (UTC, the message escaped; bytes that are not UTF-8 become U+FFFD).
std::string setup_logging(const std::string& session, const std::string& level,
                          bool json = false);

}  // namespace lpk::proxy
