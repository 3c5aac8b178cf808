#include "proxy/control/console.hpp"

#include <unistd.h>

#include <cstdio>

namespace lpk::proxy::console {

std::string lines_json() {
  return tunnel::console_lines_json({&kProjectFile, &kDns, &kReady, &kListen, &kService, &kInbound, &kRoute, &kTunnelUp,
                                     &kTunnelClosed, &kTunnels, &kEnvironment, &kNotImported, &kFilesUpdated,
                                     &kResolver, &kResolverBack, &kEnvFile,
                                     &kWaitingForCommand, &kCommandExited, &kServiceCommandExited});
}

Progress::Progress(bool terminal) : terminal_(terminal) {}

Progress Progress::for_stdout() {
  return Progress(::isatty(STDOUT_FILENO) == 1 && !tunnel::json_lines());
}

void Progress::step(const std::string& line) {
  if (tunnel::json_lines()) return print_json("progress", line);
  if (!terminal_ && line == last_waiting_) {  // already printed as the last waiting line
    last_waiting_.clear();
    return;
  }
  if (open_line_) std::fputs("\r\033[K", stdout);
  open_line_ = false;
  last_waiting_.clear();
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void Progress::waiting(const std::string& line) {
  if (line == last_waiting_) return;
  if (tunnel::json_lines()) {
    last_waiting_ = line;
    return print_json("waiting", line);
  }
  last_waiting_ = line;
  if (terminal_) {
    std::printf("\r\033[K%s", line.c_str());
    open_line_ = true;
  } else {
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
}

void Progress::print_json(std::string_view event, const std::string& line) {
  std::printf("%s\n", tunnel::json_line(event, line, {}).c_str());
  std::fflush(stdout);
}

void Progress::done() {
  if (open_line_) std::fputs("\n", stdout);
  open_line_ = false;
  std::fflush(stdout);
}

}  // namespace lpk::proxy::console
