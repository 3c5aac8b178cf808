#include "proxy/tunnel/codec.hpp"

#include <algorithm>
#include <cstring>
#include <boost/asio/ip/address.hpp>

#include "proxy/tunnel/detail/bytes.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::tunnel {
namespace {

using detail::ByteReader;
using detail::ByteWriter;
using boost::system::result;

std::string_view clip(std::string_view reason) { return reason.substr(0, kMaxReasonSize); }

// Starts a control frame: reserves the header, lets `body` write the payload, then fills in
// the length.
template <typename Body>
EncodedFrame control_frame(FrameType type, std::uint8_t flags, std::uint32_t stream, Body body) {
  EncodedFrame f;
  ByteWriter payload(std::span(f.bytes).subspan(kFrameHeaderSize));
  body(payload);
  f.size = kFrameHeaderSize + payload.size();
  encode_header({std::uint32_t(payload.size()), type, flags, stream},
                std::span<std::byte, kFrameHeaderSize>(f.bytes.data(), kFrameHeaderSize));
  return f;
}

bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostNameSize) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
  });
}

result<Target> decode_target(ByteReader& r) {
  Target t;
  auto kind = r.u8();
  const auto flags = r.u8();
  t.port = r.u16();
  auto host_len = r.u8();
  auto host = r.bytes(host_len);
  if (!r.done() || (flags & ~kOpenFlagDatagram) != 0) return Error::bad_frame;
  t.datagram = (flags & kOpenFlagDatagram) != 0;
  switch (static_cast<Target::Kind>(kind)) {
    case Target::Kind::name:
      t.kind = Target::Kind::name;
      t.host.assign(reinterpret_cast<const char*>(host.data()), host.size());
      if (!valid_host_name(t.host) || t.port == 0) return Error::bad_frame;
      return t;
    case Target::Kind::ipv4: {
      if (host.size() != 4 || t.port == 0) return Error::bad_frame;
      boost::asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), host.data(), 4);
      return Target{Target::Kind::ipv4, boost::asio::ip::address_v4(b).to_string(), t.port,
                    t.datagram};
    }
    case Target::Kind::ipv6: {
      if (host.size() != 16 || t.port == 0) return Error::bad_frame;
      boost::asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), host.data(), 16);
      return Target{Target::Kind::ipv6, boost::asio::ip::address_v6(b).to_string(), t.port,
                    t.datagram};
    }
    case Target::Kind::inbound:
      if (!host.empty() || t.port == 0) return Error::bad_frame;
      return Target{Target::Kind::inbound, {}, t.port, t.datagram};
  }
  return Error::bad_frame;
}

// RESUME: on stream 0 the end of the list, on a stream one entry of it.
result<ControlBody> decode_resume(ByteReader& r, bool on_session) {
  ResumeFrame f;
  if (on_session) {
    f.last_peer_id = r.u32();
  } else {
    f.received = r.u64();
    auto flags = r.u8();
    if (flags > 3) return Error::bad_frame;
    f.fin_received = (flags & 1) != 0;
    f.fin_delivered = (flags & 2) != 0;
    if (f.fin_delivered && !f.fin_received) return Error::bad_frame;
  }
  if (!r.done()) return Error::bad_frame;
  return f;
}

// Decodes the payload of a control frame; DATA never comes here.
result<ControlBody> decode_control(const FrameHeader& h, std::span<const std::byte> payload) {
  ByteReader r(payload);
  const bool on_session = h.stream_id == 0;
  switch (h.type) {
    case FrameType::open: {
      if (on_session) return Error::stream_id_misuse;
      auto t = decode_target(r);
      if (!t) return t.error();
      return OpenFrame{std::move(*t)};
    }
    case FrameType::open_result: {
      auto code = r.u8();
      r.u8();
      auto reason = r.string(r.u16());
      if (!r.done() || code > std::uint8_t(OpenCode::internal)) return Error::bad_frame;
      if (on_session) return Error::stream_id_misuse;
      return OpenResultFrame{OpenCode(code), std::move(reason)};
    }
    case FrameType::window: {
      WindowFrame w{r.u64(), r.u64()};
      if (!r.done() || w.consumed > w.limit) return Error::bad_frame;
      if (on_session) return Error::stream_id_misuse;
      return w;
    }
    case FrameType::reset: {
      auto code = r.u32();
      auto reason = r.string(r.u16());
      if (!r.done()) return Error::bad_frame;
      if (on_session) return Error::stream_id_misuse;
      return ResetFrame{ResetCode(code), std::move(reason)};
    }
    case FrameType::ping: {
      PingFrame p{r.u64()};
      if (!r.done()) return Error::bad_frame;
      if (!on_session) return Error::stream_id_misuse;
      return p;
    }
    case FrameType::go_away: {
      GoAwayFrame g;
      g.last_stream_id = r.u32();
      g.code = GoAwayCode(r.u32());
      g.reason = r.string(r.u16());
      if (!r.done()) return Error::bad_frame;
      if (!on_session) return Error::stream_id_misuse;
      return g;
    }
    case FrameType::resume: return decode_resume(r, on_session);
    case FrameType::data: break;
  }
  return Error::unknown_frame_type;
}

}  // namespace

std::array<std::byte, kHelloSize> encode_hello(const Hello& h) {
  std::array<std::byte, kHelloSize> out{};
  ByteWriter w(out);
  w.bytes(kMagic.data(), kMagic.size());
  w.u8(h.version);
  w.u8(std::uint8_t(h.role));
  w.u16(std::uint16_t((h.has_auth ? 1 : 0) | (h.refused ? 2 : 0) | (h.resume ? 4 : 0)));
  w.bytes(h.session_id.data(), h.session_id.size());
  w.u32(h.capabilities);
  w.u32(h.max_frame_payload);
  w.u32(h.max_streams);
  w.u32(h.initial_window);
  w.bytes(h.auth.data(), h.auth.size());
  return out;
}

result<Hello> decode_hello(std::span<const std::byte, kHelloSize> in) {
  ByteReader r(in);
  auto magic = r.bytes(kMagic.size());
  if (!std::equal(magic.begin(), magic.end(), kMagic.begin())) return Error::bad_magic;
  Hello h;
  h.version = r.u8();
  if (h.version != kProtocolVersion) return Error::bad_version;
  auto role = r.u8();
  if (role != std::uint8_t(Role::proxy) && role != std::uint8_t(Role::agent)) {
    return Error::bad_role;
  }
  h.role = Role(role);
  auto flags = r.u16();
  h.has_auth = (flags & 1) != 0;
  h.refused = (flags & 2) != 0;
  h.resume = (flags & 4) != 0;
  auto id = r.bytes(kSessionIdSize);
  std::copy(id.begin(), id.end(), h.session_id.begin());
  h.capabilities = r.u32();
  h.max_frame_payload = r.u32();
  h.max_streams = r.u32();
  h.initial_window = r.u32();
  auto auth = r.bytes(kAuthSize);
  std::copy(auth.begin(), auth.end(), h.auth.begin());
  if (!r.done()) return Error::truncated;
  if (h.max_frame_payload < kMinFramePayload || h.max_frame_payload > kMaxFramePayloadLimit ||
      h.initial_window < kMinFramePayload || h.initial_window > kMaxWindowLimit ||
      h.max_streams == 0) {
    return Error::bad_hello;
  }
  return h;
}

void encode_header(const FrameHeader& h, std::span<std::byte, kFrameHeaderSize> out) {
  ByteWriter w(out);
  w.u32(h.length);
  w.u8(std::uint8_t(h.type));
  w.u8(h.flags);
  w.u16(0);
  w.u32(h.stream_id);
}

std::array<std::byte, kFrameHeaderSize> encode_data_header(std::uint32_t stream_id,
                                                           std::uint32_t length, bool fin) {
  std::array<std::byte, kFrameHeaderSize> out;
  encode_header({length, FrameType::data, std::uint8_t(fin ? kFlagFin : 0), stream_id}, out);
  return out;
}

result<EncodedFrame> encode_open(std::uint32_t stream_id, const Target& t) {
  std::array<std::byte, 16> addr{};
  std::size_t addr_len = 0;
  boost::system::error_code ec;
  switch (t.kind) {
    case Target::Kind::name:
      if (!valid_host_name(t.host)) return Error::bad_frame;
      addr_len = t.host.size();  // the name itself is written below
      break;
    case Target::Kind::ipv4: {
      auto a = boost::asio::ip::make_address_v4(t.host, ec);
      if (ec) return Error::bad_frame;
      auto b = a.to_bytes();
      std::memcpy(addr.data(), b.data(), addr_len = 4);
      break;
    }
    case Target::Kind::ipv6: {
      auto a = boost::asio::ip::make_address_v6(t.host, ec);
      if (ec) return Error::bad_frame;
      auto b = a.to_bytes();
      std::memcpy(addr.data(), b.data(), addr_len = 16);
      break;
    }
    case Target::Kind::inbound: break;
  }
  if (t.port == 0) return Error::bad_frame;
  return control_frame(FrameType::open, 0, stream_id, [&](ByteWriter& w) {
    w.u8(std::uint8_t(t.kind));
    w.u8(t.datagram ? kOpenFlagDatagram : 0);
    w.u16(t.port);
    w.u8(std::uint8_t(addr_len));
    if (t.kind == Target::Kind::name) {
      w.bytes(t.host.data(), t.host.size());
    } else {
      w.bytes(addr.data(), addr_len);
    }
  });
}

EncodedFrame encode_open_result(std::uint32_t stream_id, OpenCode code, std::string_view reason) {
  reason = clip(reason);
  return control_frame(FrameType::open_result, 0, stream_id, [&](ByteWriter& w) {
    w.u8(std::uint8_t(code));
    w.u8(0);
    w.u16(std::uint16_t(reason.size()));
    w.bytes(reason.data(), reason.size());
  });
}

EncodedFrame encode_window(std::uint32_t stream_id, const WindowFrame& window) {
  return control_frame(FrameType::window, 0, stream_id, [&](ByteWriter& w) {
    w.u64(window.consumed);
    w.u64(window.limit);
  });
}

EncodedFrame encode_window_fin_delivered(std::uint32_t stream_id, const WindowFrame& window) {
  return control_frame(FrameType::window, kFlagFin, stream_id, [&](ByteWriter& w) {
    w.u64(window.consumed);
    w.u64(window.limit);
  });
}

EncodedFrame encode_resume(std::uint32_t stream_id, const ResumeFrame& resume) {
  return control_frame(FrameType::resume, 0, stream_id, [&](ByteWriter& w) {
    if (stream_id == 0) {
      w.u32(resume.last_peer_id);
      return;
    }
    w.u64(resume.received);
    w.u8(std::uint8_t((resume.fin_received ? 1 : 0) | (resume.fin_delivered ? 2 : 0)));
  });
}

EncodedFrame encode_reset(std::uint32_t stream_id, ResetCode code, std::string_view reason) {
  reason = clip(reason);
  return control_frame(FrameType::reset, 0, stream_id, [&](ByteWriter& w) {
    w.u32(std::uint32_t(code));
    w.u16(std::uint16_t(reason.size()));
    w.bytes(reason.data(), reason.size());
  });
}

EncodedFrame encode_ping(std::uint64_t opaque, bool ack) {
  return control_frame(FrameType::ping, ack ? kFlagAck : 0, 0,
                       [&](ByteWriter& w) { w.u64(opaque); });
}

EncodedFrame encode_go_away(std::uint32_t last_stream_id, GoAwayCode code,
                            std::string_view reason) {
  reason = clip(reason);
  return control_frame(FrameType::go_away, 0, 0, [&](ByteWriter& w) {
    w.u32(last_stream_id);
    w.u32(std::uint32_t(code));
    w.u16(std::uint16_t(reason.size()));
    w.bytes(reason.data(), reason.size());
  });
}

DecodeStep decode_frame(std::span<const std::byte> in, std::uint32_t max_payload) {
  DecodeStep step;
  if (in.size() < kFrameHeaderSize) return step;
  ByteReader r(in.first(kFrameHeaderSize));
  FrameHeader& h = step.header;
  h.length = r.u32();
  auto type = r.u8();
  h.flags = r.u8();
  r.u16();  // reserved
  h.stream_id = r.u32();
  step.status = DecodeStep::Status::error;
  if (type >= kFrameTypeCount) {
    step.error = Error::unknown_frame_type;
    return step;
  }
  h.type = FrameType(type);
  const std::size_t limit = h.type == FrameType::data ? max_payload : kMaxControlFrameSize;
  if (h.length > limit) {
    step.error = Error::frame_too_large;
    return step;
  }
  if (in.size() - kFrameHeaderSize < h.length) {
    step.status = DecodeStep::Status::need_more;
    return step;
  }
  step.consumed = kFrameHeaderSize + h.length;
  auto payload = in.subspan(kFrameHeaderSize, h.length);
  if (h.type == FrameType::data) {
    if (h.stream_id == 0) {
      step.error = Error::stream_id_misuse;
      return step;
    }
    step.payload = payload;
    step.status = DecodeStep::Status::frame;
    return step;
  }
  auto body = decode_control(h, payload);
  if (!body) {
    step.error = body.error();
    return step;
  }
  step.body = std::move(*body);
  step.status = DecodeStep::Status::frame;
  return step;
}

}  // namespace lpk::tunnel
