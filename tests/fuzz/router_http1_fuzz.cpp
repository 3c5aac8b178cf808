// libFuzzer target for what clients and backends send lpk-agent router (agent/router/http1): the
// protocol sniff, request and response heads, and bodies split at a point the input picks.
// None may crash, and each answer must stay within the bytes given: a head's size, its views and
// a body's consumed count never point past the input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/router/http1.hpp"

namespace {

using namespace lpk::router;

bool within(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_body(std::string_view body, BodyKind kind, std::uint64_t length, std::size_t split) {
  BodyFramer framer;
  framer.start(kind, length);
  std::size_t used = 0, total = 0;
  auto first = body.substr(0, split);
  auto r = framer.take(first, used);
  if (used > first.size()) __builtin_trap();
  total += used;
  if (r == BodyFramer::Result::more) {
    auto rest = body.substr(first.size());
    framer.take(rest, used);
    if (used > rest.size()) __builtin_trap();
    total += used;
  }
  if (total > body.size()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  sniff_protocol(in);
  std::size_t split = size ? data[0] : 0;
  RequestHead request;
  if (parse_request_head(in, request) == ParseStatus::complete) {
    if (request.size > in.size() || !within(request.method, in) || !within(request.target, in)) {
      __builtin_trap();
    }
    for (const auto& h : request.headers) {
      if (!within(h.name, in) || !within(h.value, in)) __builtin_trap();
    }
    check_body(in.substr(request.size), request.body, request.content_length, split);
  }
  ResponseHead response;
  if (parse_response_head(in, split % 2, split % 3 == 0, response) == ParseStatus::complete) {
    if (response.size > in.size() || response.status < 100 || response.status > 999)
      __builtin_trap();
    check_body(in.substr(response.size), response.body, response.content_length, split);
  }
  check_body(in, BodyKind::chunked, 0, split);
  return 0;
}
