#include "agent/router/h2_settings.hpp"

#include <algorithm>

namespace lpk::router {

SettingsAckFilter::Step SettingsAckFilter::scan(std::string_view bytes) {
  Step step;
  if (found_) return {bytes.size(), false};
  for (;;) {
    auto take = std::min<std::uint64_t>(skip_, bytes.size() - step.pass);
    step.pass += take;
    skip_ -= take;
    if (skip_ > 0 || bytes.size() - step.pass < 9) return step;  // within a frame, or a header
    auto header = bytes.substr(step.pass, 9);
    auto byte = [&](int i) { return std::uint64_t(static_cast<unsigned char>(header[i])); };
    auto length = byte(0) << 16 | byte(1) << 8 | byte(2);
    if (header[3] == 0x4 && (byte(4) & 0x1) && length == 0) {
      found_ = step.found = true;
      return step;
    }
    step.pass += 9;
    skip_ = length;
  }
}

}  // namespace lpk::router
