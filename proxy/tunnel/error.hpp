#pragma once
// Errors of the tunnel module, as error_codes of their own category, and the one error type
// of lpk's data path: a code for programs plus the sentence a person reads (docs/errors.md).

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string>
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
  link_misconfigured,  // the link cannot be made as configured: retrying cannot help
  bad_document,        // an agent service sent a document that is not the documented shape
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(Error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// Why something failed: `code` for programs (compare it, map it to an exit status), `message`
/// for people: one sentence that names what failed and, where it can, what to do.
struct Problem {
  boost::system::error_code code;
  std::string message;
};

/// The result type of every fallible call on the data path (tunnel, proxy, agent): a value or
/// a Problem. value() on a Problem throws std::runtime_error(message), for callers at the
/// command layer that want an exception.
template <class T>
using Result = boost::system::result<T, Problem>;

[[noreturn]] void throw_exception_from_error(const Problem& problem,
                                             const boost::source_location& where);

}  // namespace lpk::tunnel

template <>
struct boost::system::is_error_code_enum<lpk::tunnel::Error> : std::true_type {};
