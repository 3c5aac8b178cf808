#pragma once
// The output of one service's command (`connect --run SERVICE='...'`) on lpk-proxy's stdout,
// every line prefixed with the service's name as `docker compose` does ("api    | ..."), so
// that several commands can share one terminal and each line says whose it is.
//
// Threading: the coroutine runs on the session's io_context; it writes whole lines with one
// write(2) each, so lines of different commands never interleave within a line.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace lpk::proxy {

/// "api    | ": `service` padded to `width` columns (the longest name of the session).
std::string output_prefix(std::string_view service, std::size_t width);

/// Splits `pending` (what was read so far) into complete lines, each prefixed and ending in
/// '\n', and leaves the unfinished rest in `pending`. Pure.
std::vector<std::string> prefixed_lines(std::string& pending, std::string_view prefix);

/// Copies `pipe` to descriptor `out` line by line with `prefix` until the pipe's writers have
/// all closed it (the command and whatever it started have exited); a last line without '\n'
/// gets one.
boost::asio::awaitable<void> copy_prefixed(boost::asio::posix::stream_descriptor pipe,
                                           std::string prefix, int out);

}  // namespace lpk::proxy
