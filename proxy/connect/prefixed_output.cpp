#include "proxy/connect/prefixed_output.hpp"

#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

namespace lpk::proxy {

namespace asio = boost::asio;

std::string output_prefix(std::string_view service, std::size_t width) {
  std::string prefix(service);
  if (prefix.size() < width) prefix.append(width - prefix.size(), ' ');
  return prefix + " | ";
}

std::vector<std::string> prefixed_lines(std::string& pending, std::string_view prefix) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (auto end = pending.find('\n'); end != std::string::npos;
       end = pending.find('\n', start)) {
    lines.push_back(std::string(prefix) + pending.substr(start, end + 1 - start));
    start = end + 1;
  }
  pending.erase(0, start);
  return lines;
}

namespace {

// A terminal or pipe that is gone is not the command's problem: its output is dropped.
void write_all(int out, std::string_view text) {
  while (!text.empty()) {
    auto n = ::write(out, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

asio::awaitable<void> copy_prefixed(asio::posix::stream_descriptor pipe, std::string prefix,
                                    int out) {
  std::array<char, 16 * 1024> buffer;
  std::string pending;
  for (;;) {
    auto [ec, n] = co_await pipe.async_read_some(asio::buffer(buffer),
                                                 asio::as_tuple(asio::use_awaitable));
    pending.append(buffer.data(), n);
    for (const auto& line : prefixed_lines(pending, prefix)) write_all(out, line);
    if (ec) break;  // eof once every writer closed it; aborted when the session stops
  }
  if (!pending.empty()) write_all(out, prefix + pending + "\n");
}

}  // namespace lpk::proxy
