#pragma once
// The lines lpk-proxy and lpk-agent print on stdout for scripts and tests to read (`ready`,
// `dns ADDR:PORT`, `listen ADDR:PORT -> TARGET`, `tunnel ADDR:PORT` ...). Each is declared
// once, as a format and the pattern that reads it back; both binaries print their table as
// JSON (`lpk-proxy __console-lines`, `lpk-agent --console-lines`), which is what the e2e tests
// match against, so a line cannot change without its readers seeing it. These lines are
// stable: README.md lists them.

#include <fmt/format.h>

#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>

namespace lpk::tunnel {

struct ConsoleLine {
  std::string_view name;     ///< key in the JSON table ("ready", "dns")
  std::string_view format;   ///< fmt format of the line, without the newline
  std::string_view pattern;  ///< a regular expression (POSIX ERE and Python alike) reading it
};

/// Prints `line` with `args` on stdout and flushes: readers wait for it.
template <class... Args>
void print_line(const ConsoleLine& line, const Args&... args) {
  auto text = fmt::format(fmt::runtime(line.format), args...);
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

/// {"name":{"format":...,"pattern":...},...} for a table of lines.
std::string console_lines_json(std::initializer_list<const ConsoleLine*> lines);

}  // namespace lpk::tunnel
