#pragma once
// Errors of the tunnel module, as error_codes of their own category.

#include <boost/system/error_code.hpp>
#include <type_traits>

namespace lpk::tunnel {

enum class Error {
  truncated = 1,       // input ended inside a hello or frame
  bad_magic,           // the peer does not speak the lpk tunnel protocol
  bad_version,         // the peer speaks another protocol version
  bad_role,            // both ends claim the same role, or an unknown one
  auth_failed,         // shared secret missing or different
  bad_hello,           // hello fields out of range
  frame_too_large,     // payload longer than the negotiated maximum
  unknown_frame_type,
  bad_frame,           // payload does not match the frame type
  stream_id_misuse,    // wrong parity, reused id, frame for a stream never opened
  window_overflow,     // the peer sent more than its credit
  too_many_streams,
  session_closed,
  ping_timeout,
  replaced,            // a newer link took over
  peer_went_away,
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(Error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace lpk::tunnel

template <>
struct boost::system::is_error_code_enum<lpk::tunnel::Error> : std::true_type {};
