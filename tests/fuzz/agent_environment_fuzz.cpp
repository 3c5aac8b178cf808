// libFuzzer target for the env service's document as lpk-proxy reads it from an agent
// (tunnel::parse_environment) and the files service's messages (tunnel::parse_files_update):
// whatever the bytes, a value or a bad_document Problem of one line, never an exception; and
// what parses survives encode -> parse unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/tunnel/agent_services.hpp"

namespace {

using namespace lpk::tunnel;

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const AgentEnvironment& a, const AgentEnvironment& b) {
  if (a.env != b.env || a.pod_name != b.pod_name || a.pod_namespace != b.pod_namespace ||
      a.container != b.container || a.files.size() != b.files.size() ||
      a.skipped.size() != b.skipped.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.files.size(); ++i) {
    if (a.files[i].path != b.files[i].path || a.files[i].mode != b.files[i].mode ||
        a.files[i].bytes != b.files[i].bytes) {
      return false;
    }
  }
  for (std::size_t i = 0; i < a.skipped.size(); ++i) {
    if (a.skipped[i].path != b.skipped[i].path || a.skipped[i].reason != b.skipped[i].reason) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view document(reinterpret_cast<const char*>(data), size);
  // The same bytes as a files-service message (one line of the files.lpk.internal stream).
  if (auto update = parse_files_update(document)) {
    for (const auto& f : update->files) check(f.mode <= 07777);
    auto line = encode_files_update(*update);
    check(!line.empty() && line.back() == '\n' && line.find('\n') == line.size() - 1);
    auto again = parse_files_update(std::string_view(line).substr(0, line.size() - 1));
    check(again.has_value() && again->full == update->full &&
          again->removed.size() == update->removed.size() &&
          again->files.size() == update->files.size());
  } else {
    check(update.error().code == make_error_code(Error::bad_document));
  }
  auto parsed = parse_environment(document);
  if (!parsed) {
    check(parsed.error().code == make_error_code(Error::bad_document));
    const auto& message = parsed.error().message;
    check(!message.empty() && message.find('\n') == std::string::npos);
    return 0;
  }
  check(parsed->files.size() <= size && parsed->skipped.size() <= size);
  for (const auto& f : parsed->files) check(f.mode <= 07777);
  // Strings that came through JSON are UTF-8, so the encoder has nothing to replace.
  auto again = parse_environment(encode_environment(*parsed));
  check(again.has_value());
  check(same(*parsed, *again));
  is_service_name(document);
  return 0;
}
