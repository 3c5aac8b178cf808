#pragma once
// The lpk tunnel wire format (docs/protocol.md): a fixed-size hello in each direction, then
// frames with a fixed 12-byte header. All integers are big-endian.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace lpk::tunnel {

inline constexpr std::array<std::byte, 4> kMagic{std::byte{'L'}, std::byte{'P'}, std::byte{'K'},
                                                 std::byte{'T'}};
inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::size_t kHelloSize = 72;
inline constexpr std::size_t kFrameHeaderSize = 12;
inline constexpr std::size_t kSessionIdSize = 16;
inline constexpr std::size_t kAuthSize = 32;

/// Hard limits that no negotiation can exceed: they bound every buffer in a session.
inline constexpr std::uint32_t kMaxFramePayloadLimit = 1u << 20;    // 1 MiB
inline constexpr std::uint32_t kMinFramePayload = 1024;
inline constexpr std::uint32_t kMaxWindowLimit = 64u << 20;          // 64 MiB per stream
inline constexpr std::size_t kMaxReasonSize = 512;
inline constexpr std::size_t kMaxHostNameSize = 253;

/// The port lpk-agent listens on for the tunnel (on the pod's 127.0.0.1 only) unless told
/// otherwise; `connect` and `run --agent-pod` reach it there.
inline constexpr std::uint16_t kDefaultAgentPort = 4590;

enum class Role : std::uint8_t { proxy = 1, agent = 2 };

using SessionId = std::array<std::byte, kSessionIdSize>;

/// Capability bits announced in the hello; a feature is used only when both sides set it.
enum Capability : std::uint32_t {
  kCapResume = 1u << 0,    // streams survive a dropped link (docs/protocol.md §6)
  kCapDatagram = 1u << 1,  // OPEN may carry the datagram flag: UDP flows (docs/protocol.md §8)
};

struct Hello {
  std::uint8_t version = kProtocolVersion;
  Role role = Role::proxy;
  SessionId session_id{};
  std::uint32_t capabilities = 0;
  std::uint32_t max_frame_payload = 64 * 1024;  // largest payload the sender accepts
  std::uint32_t max_streams = 16384;            // streams the sender lets its peer open
  std::uint32_t initial_window = 256 * 1024;    // credit granted to each new stream
  bool has_auth = false;
  bool refused = false;  // agent only: the proxy is refused; a GOAWAY with the reason follows
  // Proxy: "this link continues session `session_id`, whose streams I kept". Agent: "so did I:
  // the session resumes" (clear: a fresh session with that id, whose streams start anew).
  bool resume = false;
  std::array<std::byte, kAuthSize> auth{};      // HMAC-SHA256(secret, label|role|session id)
};

enum class FrameType : std::uint8_t {
  data = 0,
  open = 1,
  open_result = 2,
  window = 3,
  reset = 4,
  ping = 5,
  go_away = 6,
  resume = 7,  // only to a peer that announced kCapResume
};
inline constexpr std::uint8_t kFrameTypeCount = 8;

inline constexpr std::uint8_t kFlagFin = 0x01;  // data: the sender will send no more bytes;
                                                // window (resume only): and the FIN reached the
                                                // application, so the stream may be forgotten
inline constexpr std::uint8_t kFlagAck = 0x01;  // ping: this is the pong
/// OPEN's flags byte (after `kind`): the stream is a UDP flow (kCapDatagram).
inline constexpr std::uint8_t kOpenFlagDatagram = 0x01;

struct FrameHeader {
  std::uint32_t length = 0;  // payload bytes after the header
  FrameType type = FrameType::data;
  std::uint8_t flags = 0;
  std::uint32_t stream_id = 0;  // 0 = the session itself
};

/// Where an opened stream should go. `inbound` names the agent port a connection arrived on.
struct Target {
  enum class Kind : std::uint8_t { name = 1, ipv4 = 2, ipv6 = 3, inbound = 4 };
  Kind kind = Kind::name;
  std::string host;  // DNS name, or dotted / colon text form of the address; empty for inbound
  std::uint16_t port = 0;
  // A UDP flow rather than a TCP connection: the stream carries datagrams as records
  // (datagram.hpp), the far side sends them from a connected UDP socket. Only to a peer that
  // announced kCapDatagram.
  bool datagram = false;

  std::string to_string() const;
  friend bool operator==(const Target&, const Target&) = default;
};

enum class OpenCode : std::uint8_t {
  ok = 0,
  refused = 1,
  unreachable = 2,
  timed_out = 3,
  name_not_found = 4,
  too_many_streams = 5,
  not_permitted = 6,
  internal = 7,
};
const char* to_string(OpenCode code);
/// "connection refused", or "name not found: no such host" when `reason` adds something (a
/// reason that only repeats the code, in any case, is not repeated).
std::string describe(OpenCode code, std::string_view reason);

enum class ResetCode : std::uint32_t {
  cancel = 0,           // the application closed abortively
  connection_reset = 1, // the far socket was reset
  protocol_error = 2,
  flow_control = 3,
  internal = 4,
  session_closing = 5,
};
const char* to_string(ResetCode code);

enum class GoAwayCode : std::uint32_t {
  normal = 0,
  protocol_error = 1,
  replaced = 2,  // the agent took a newer link
  internal = 3,
  auth_failed = 4,
  version_mismatch = 5,
  ping_timeout = 6,
};
const char* to_string(GoAwayCode code);

struct OpenFrame { Target target; };
struct OpenResultFrame { OpenCode code = OpenCode::ok; std::string reason; };
/// Credit as absolute byte offsets, so a resumed stream knows exactly what arrived.
struct WindowFrame { std::uint64_t consumed = 0; std::uint64_t limit = 0; };
struct ResetFrame { ResetCode code = ResetCode::cancel; std::string reason; };
struct PingFrame { std::uint64_t opaque = 0; };
struct GoAwayFrame {
  std::uint32_t last_stream_id = 0;
  GoAwayCode code = GoAwayCode::normal;
  std::string reason;
};

/// After a resumed hello each side lists its streams, one RESUME each, then one RESUME on
/// stream 0 that ends the list (docs/protocol.md §6).
struct ResumeFrame {
  std::uint64_t received = 0;       // per stream: bytes of the peer's that arrived here
  bool fin_received = false;        // per stream: and its FIN
  bool fin_delivered = false;       // per stream: and that FIN reached the application
  std::uint32_t last_peer_id = 0;   // stream 0: the highest stream id of the peer's seen here
};

/// A decoded control frame (DATA payloads are handed over as spans, never copied into this).
using ControlBody =
    std::variant<std::monostate, OpenFrame, OpenResultFrame, WindowFrame, ResetFrame, PingFrame,
                 GoAwayFrame, ResumeFrame>;

}  // namespace lpk::tunnel
