// libFuzzer target for the router's HPACK decoder (agent/router/hpack): no input may crash; the
// bytes as two header blocks of one connection (the dynamic table carried across), with the
// default table and a small one, never leave a table over its capacity or a capacity over the
// limit; and whatever a block decodes to, the encoder's block of it decodes to the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/router/hpack.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lpk::router;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (std::size_t table : {std::size_t{4096}, std::size_t{64}}) {
    HpackDecoder decoder(table);
    for (auto block : {bytes.substr(0, size / 2), bytes.substr(size / 2)}) {
      std::vector<HeaderField> fields;
      auto error = decoder.decode(block, fields);
      if (decoder.table_size() > decoder.table_capacity() || decoder.table_capacity() > table) {
        __builtin_trap();
      }
      if (error != HpackError::none) break;  // the connection would be closed
      std::string encoded;
      HpackEncoder::encode(fields, encoded);
      HpackDecoder fresh;
      std::vector<HeaderField> back;
      if (fresh.decode(encoded, back) != HpackError::none || back != fields) __builtin_trap();
    }
  }
  return 0;
}
