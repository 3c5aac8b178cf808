// libFuzzer target for the router's HTTP/2 first-request sniffing (agent/router/h2_sniff) and
// its HPACK decoder: none may crash; the answer must not change when more bytes follow a
// decided one (found, not_h2, malformed), and a decoder keeps its table within its capacity.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/router/h2_sniff.hpp"
#include "agent/router/hpack.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lpk::router;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = sniff_h2_first_request(bytes);
  if (r.status != SniffStatus::found && !r.headers.empty()) __builtin_trap();
  if (r.status != SniffStatus::need_more && size > 0) {
    auto longer = sniff_h2_first_request(std::string(bytes) + '\0');
    if (longer.status != r.status || longer.headers != r.headers) __builtin_trap();
  }
  // The bytes as frames after a preface, so mutations need not keep one.
  auto framed = sniff_h2_first_request(std::string(kH2Preface) + std::string(bytes));
  if (framed.status == SniffStatus::not_h2) __builtin_trap();
  // The same bytes as two header blocks of one connection, 4096 and a small table.
  for (std::size_t table : {std::size_t{4096}, std::size_t{64}}) {
    HpackDecoder decoder(table);
    std::vector<HeaderField> fields;
    decoder.decode(bytes.substr(0, size / 2), fields);
    decoder.decode(bytes.substr(size / 2), fields);
    if (decoder.table_size() > decoder.table_capacity() || decoder.table_capacity() > table) {
      __builtin_trap();
    }
  }
  return 0;
}
