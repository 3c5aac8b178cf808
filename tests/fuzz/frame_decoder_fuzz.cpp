// libFuzzer target for the tunnel's wire decoder: the hello (first 72 bytes), then the frame
// loop the session runs, under a few announced payload limits. Beyond "no crash, no
// out-of-bounds read", every decoded frame must survive encode -> decode unchanged, and the
// decoder's bookkeeping must stay inside the input. The payloads of DATA frames (and the whole
// input) also go through the datagram record decoder that UDP flows use (datagram.hpp).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>

#include "proxy/tunnel/codec.hpp"
#include "proxy/tunnel/datagram.hpp"

namespace {

using namespace lpk::tunnel;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_hello(std::span<const std::byte> in) {
  if (in.size() < kHelloSize) return;
  auto hello = decode_hello(std::span<const std::byte, kHelloSize>(in.data(), kHelloSize));
  if (!hello) return;
  auto again = decode_hello(encode_hello(*hello));
  check(again.has_value());
  check(again->role == hello->role && again->session_id == hello->session_id &&
        again->capabilities == hello->capabilities &&
        again->max_frame_payload == hello->max_frame_payload &&
        again->max_streams == hello->max_streams &&
        again->initial_window == hello->initial_window && again->has_auth == hello->has_auth &&
        again->auth == hello->auth && again->resume == hello->resume &&
        again->refused == hello->refused);
}

// The body decoded from re-encoding `step`'s frame, or nothing when the encoder cannot say it
// (reasons longer than the encoder's clip).
std::optional<ControlBody> reencode(const DecodeStep& step) {
  const auto id = step.header.stream_id;
  std::optional<EncodedFrame> f;
  if (auto* o = std::get_if<OpenFrame>(&step.body)) {
    auto e = encode_open(id, o->target);
    check(e.has_value());  // whatever decodes must be encodable
    f = *e;
  } else if (auto* r = std::get_if<OpenResultFrame>(&step.body)) {
    if (r->reason.size() > kMaxReasonSize) return std::nullopt;
    f = encode_open_result(id, r->code, r->reason);
  } else if (auto* w = std::get_if<WindowFrame>(&step.body)) {
    f = encode_window(id, *w);
  } else if (auto* rs = std::get_if<ResetFrame>(&step.body)) {
    if (rs->reason.size() > kMaxReasonSize) return std::nullopt;
    f = encode_reset(id, rs->code, rs->reason);
  } else if (auto* p = std::get_if<PingFrame>(&step.body)) {
    f = encode_ping(p->opaque, (step.header.flags & kFlagAck) != 0);
  } else if (auto* g = std::get_if<GoAwayFrame>(&step.body)) {
    if (g->reason.size() > kMaxReasonSize) return std::nullopt;
    f = encode_go_away(g->last_stream_id, g->code, g->reason);
  } else if (auto* rm = std::get_if<ResumeFrame>(&step.body)) {
    f = encode_resume(id, *rm);
  } else {
    return std::nullopt;
  }
  auto again = decode_frame(f->view(), kMinFramePayload);
  check(again.status == DecodeStep::Status::frame && again.consumed == f->size);
  check(again.header.type == step.header.type && again.header.stream_id == id);
  return again.body;
}

bool same(const ControlBody& a, const ControlBody& b) {
  if (a.index() != b.index()) return false;
  if (auto* x = std::get_if<OpenFrame>(&a)) return x->target == std::get<OpenFrame>(b).target;
  if (auto* x = std::get_if<OpenResultFrame>(&a)) {
    auto& y = std::get<OpenResultFrame>(b);
    return x->code == y.code && x->reason == y.reason;
  }
  if (auto* x = std::get_if<WindowFrame>(&a)) {
    auto& y = std::get<WindowFrame>(b);
    return x->consumed == y.consumed && x->limit == y.limit;
  }
  if (auto* x = std::get_if<ResetFrame>(&a)) {
    auto& y = std::get<ResetFrame>(b);
    return x->code == y.code && x->reason == y.reason;
  }
  if (auto* x = std::get_if<PingFrame>(&a)) return x->opaque == std::get<PingFrame>(b).opaque;
  if (auto* x = std::get_if<GoAwayFrame>(&a)) {
    auto& y = std::get<GoAwayFrame>(b);
    return x->last_stream_id == y.last_stream_id && x->code == y.code && x->reason == y.reason;
  }
  if (auto* x = std::get_if<ResumeFrame>(&a)) {
    auto& y = std::get<ResumeFrame>(b);
    return x->received == y.received && x->fin_received == y.fin_received &&
           x->fin_delivered == y.fin_delivered && x->last_peer_id == y.last_peer_id;
  }
  return true;
}

// A datagram stream's bytes: records until need_more or malformed, each inside the input and
// re-encoded to the same header.
void decode_records(std::span<const std::byte> in) {
  for (;;) {
    auto step = decode_record(in);
    if (step.status == RecordStep::Status::need_more) return check(step.consumed == 0);
    if (step.status == RecordStep::Status::malformed) return check(in.size() >= kRecordHeaderSize);
    check(step.datagram.size() <= kMaxDatagramSize);
    check(step.consumed == kRecordHeaderSize + step.datagram.size() && step.consumed <= in.size());
    check(step.datagram.data() == in.data() + kRecordHeaderSize);
    const auto header = encode_record_header(step.datagram.size());
    check(header[0] == in[0] && header[1] == in[1]);
    in = in.subspan(step.consumed);
  }
}

void decode_all(std::span<const std::byte> in, std::uint32_t max_payload) {
  while (!in.empty()) {
    auto step = decode_frame(in, max_payload);
    if (step.status != DecodeStep::Status::frame) {
      // need_more claims nothing; after an error the session ends, so consumed is moot.
      if (step.status == DecodeStep::Status::need_more) check(step.consumed == 0);
      check(step.consumed <= in.size());
      check((step.status == DecodeStep::Status::error) == bool(step.error));
      return;
    }
    check(step.consumed >= kFrameHeaderSize && step.consumed <= in.size());
    check(step.consumed == kFrameHeaderSize + step.header.length);
    if (step.header.type == FrameType::data) {
      check(step.header.stream_id != 0 && step.header.length <= max_payload);
      check(step.payload.size() == step.header.length);
      check(step.payload.data() == in.data() + kFrameHeaderSize);
      decode_records(step.payload);
    } else {
      check(step.header.length <= kMaxControlFrameSize);
      if (auto body = reencode(step)) check(same(*body, step.body));
    }
    in = in.subspan(step.consumed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  check_hello(in);
  decode_records(in);
  for (std::uint32_t max : {kMinFramePayload, 64u * 1024, kMaxFramePayloadLimit}) {
    decode_all(in, max);
    if (in.size() > kHelloSize) decode_all(in.subspan(kHelloSize), max);
  }
  return 0;
}
