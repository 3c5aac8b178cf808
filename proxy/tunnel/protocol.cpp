#include "proxy/tunnel/protocol.hpp"

#include "kube/text.hpp"

namespace lpk::tunnel {

std::string Target::to_string() const {
  const char* udp = datagram ? "/udp" : "";
  switch (kind) {
    case Kind::inbound: return "inbound port " + std::to_string(port) + udp;
    case Kind::ipv6: return "[" + host + "]:" + std::to_string(port) + udp;
    default: return host + ":" + std::to_string(port) + udp;
  }
}

const char* to_string(OpenCode code) {
  switch (code) {
    case OpenCode::ok: return "ok";
    case OpenCode::refused: return "connection refused";
    case OpenCode::unreachable: return "unreachable";
    case OpenCode::timed_out: return "timed out";
    case OpenCode::name_not_found: return "name not found";
    case OpenCode::too_many_streams: return "too many streams";
    case OpenCode::not_permitted: return "not permitted";
    case OpenCode::internal: return "internal error";
  }
  return "unknown open result";
}

std::string describe(OpenCode code, std::string_view reason) {
  std::string text = to_string(code);
  if (reason.empty() || text::iequals(reason, text)) return text;
  return text + ": " + std::string(reason);
}

const char* to_string(ResetCode code) {
  switch (code) {
    case ResetCode::cancel: return "cancelled";
    case ResetCode::connection_reset: return "connection reset";
    case ResetCode::protocol_error: return "protocol error";
    case ResetCode::flow_control: return "flow-control violation";
    case ResetCode::internal: return "internal error";
    case ResetCode::session_closing: return "session closing";
  }
  return "unknown reset code";
}

const char* to_string(GoAwayCode code) {
  switch (code) {
    case GoAwayCode::normal: return "normal shutdown";
    case GoAwayCode::protocol_error: return "protocol error";
    case GoAwayCode::replaced: return "replaced by a newer link";
    case GoAwayCode::internal: return "internal error";
    case GoAwayCode::auth_failed: return "authentication failed";
    case GoAwayCode::version_mismatch: return "protocol version mismatch";
    case GoAwayCode::ping_timeout: return "ping timeout";
  }
  return "unknown go-away code";
}

}  // namespace lpk::tunnel
