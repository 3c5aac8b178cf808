// libFuzzer target for the protobuf request bodies kubesim decodes (tools/kubesim/protobuf_body):
// the wire reader and every kind's table. None may crash, and whatever decodes is JSON that can
// be written (dump() throws on a string that is not UTF-8).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tools/kubesim/protobuf_body.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto out = lpk::kubesim::decode_protobuf_body(in)) {
    if (!out->is_object() || !out->contains("kind")) __builtin_trap();
    (void)out->dump();
  }
  return 0;
}
