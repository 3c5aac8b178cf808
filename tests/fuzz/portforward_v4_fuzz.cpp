// libFuzzer target for the port-forward v4 demultiplexer: the input is a sequence of server
// messages (u16 length + bytes each) fed to one connection's state; every outcome must keep the
// payload inside the message and follow the prefix rule.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "kube/portforward.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lpk::kube::detail::V4Message;
  if (size < 2) return 0;
  std::uint16_t port = data[0] | (data[1] << 8);
  std::span<const std::uint8_t> in(data + 2, size - 2);
  lpk::kube::detail::V4State state;
  while (in.size() >= 2) {
    std::size_t n = std::min<std::size_t>(in[0] | (in[1] << 8), in.size() - 2);
    auto message = in.subspan(2, n);
    in = in.subspan(2 + n);
    bool data_prefix_before = state.data_prefix_seen;
    auto m = lpk::kube::detail::demux_v4(state, message, port);
    if (m.kind == V4Message::data || m.kind == V4Message::error_text) {
      // The payload is the message minus its channel byte, never empty.
      if (m.payload.empty() || m.payload.data() != message.data() + 1 ||
          m.payload.size() != message.size() - 1) {
        std::abort();
      }
    }
    if (m.kind == V4Message::data && !data_prefix_before) std::abort();  // prefix comes first
    if (m.kind == V4Message::protocol_error) {
      if (m.problem.empty()) std::abort();
      break;  // the connection ends here
    }
  }
  return 0;
}
