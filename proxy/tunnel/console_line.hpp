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
#include <type_traits>

namespace lpk::tunnel {

struct ConsoleLine {
  std::string_view name;     ///< key in the JSON table ("ready", "dns")
  std::string_view format;   ///< fmt format of the line, without the newline
  std::string_view pattern;  ///< a regular expression (POSIX ERE and Python alike) reading it
};

/// Turns every print_line of this process into a JSON object on one line (`--output json`):
/// {"event": NAME, "text": THE LINE, "values": [THE FIELDS IN THE FORMAT'S ORDER]}; numbers
/// stay numbers. Set once at start-up, before any line is printed.
void set_json_lines(bool on);
bool json_lines();

/// `text` as a JSON string literal, quoted and escaped; bytes that are not UTF-8 become U+FFFD.
std::string json_quoted(std::string_view text);

/// One field of a line as a JSON value.
template <class T>
std::string json_value(const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_arithmetic_v<T>) {
    return fmt::format("{}", value);
  } else {
    return json_quoted(fmt::format("{}", value));
  }
}

/// The JSON object of a line (see set_json_lines), without the newline.
std::string json_line(std::string_view event, std::string_view text,
                      std::initializer_list<std::string> values);

/// Prints `line` with `args` on stdout and flushes: readers wait for it.
template <class... Args>
void print_line(const ConsoleLine& line, const Args&... args) {
  auto text = fmt::format(fmt::runtime(line.format), args...);
  if (json_lines()) text = json_line(line.name, text, {json_value(args)...});
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

/// {"name":{"format":...,"pattern":...},...} for a table of lines.
std::string console_lines_json(std::initializer_list<const ConsoleLine*> lines);

}  // namespace lpk::tunnel
