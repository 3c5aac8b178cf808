#pragma once
// HTTP/1.x as the router reads it (RFC 9112): what the first bytes of a connection are, where a
// request or response head ends and how its body is framed, and where a chunked body ends. Pure:
// bytes in, positions and facts out; no I/O, no logging, no exception on any input. The router
// forwards the bytes unchanged, so nothing here rewrites or copies them: a head's fields are
// views into the bytes parsed, valid while those bytes are.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "agent/router/h2_frame.hpp"  // kH2Preface

namespace lpk::router {

/// The largest request or response head the router reads (request line and headers).
inline constexpr std::size_t kMaxHeadSize = 64 * 1024;

enum class Protocol { need_more, http1, h2, other };

/// What a connection that began with `bytes` speaks: `http1` once a whole HTTP/1.x request
/// line is there, `h2` once the whole HTTP/2 preface is, `other` as soon as the bytes can be
/// neither, `need_more` while they could still be either.
Protocol sniff_protocol(std::string_view bytes);

enum class ParseStatus { need_more, complete, malformed, too_large };

/// How the body after a head is delimited (RFC 9112 section 6.3).
enum class BodyKind { none, content_length, chunked, until_close };

struct Header {
  std::string_view name;
  std::string_view value;  ///< without the whitespace around it
};

struct RequestHead {
  std::size_t size = 0;  ///< bytes of the head, blank line included
  std::string_view method;
  std::string_view target;
  int minor = 1;  ///< HTTP/1.minor
  BodyKind body = BodyKind::none;
  std::uint64_t content_length = 0;
  bool close = false;            ///< Connection: close, or HTTP/1.0 without keep-alive
  bool expect_continue = false;  ///< Expect: 100-continue
  std::vector<Header> headers;   ///< in order; the vector's capacity is reused across parses

  /// The value of the first header named `name` (compared without regard to case), or
  /// nullptr when there is none.
  const std::string_view* find(std::string_view name) const;
};

/// Parses the request head at the start of `bytes` into `out` (reusing its storage).
/// `complete` sets every field of `out`; `too_large` when no head ends within kMaxHeadSize;
/// `malformed` for anything RFC 9112 says a server must reject (bad request line, header
/// syntax, obs-fold, conflicting Content-Length, a Transfer-Encoding not ending in chunked).
ParseStatus parse_request_head(std::string_view bytes, RequestHead& out);

struct ResponseHead {
  std::size_t size = 0;
  int status = 0;
  int minor = 1;
  BodyKind body = BodyKind::none;
  std::uint64_t content_length = 0;
  bool close = false;  ///< the server closes after this response (Connection: close, HTTP/1.0)
  std::vector<Header> headers;
};

/// Parses the response head at the start of `bytes`; the body's framing depends on the
/// request it answers: `head_request` (HEAD has no response body) and `connect_request` (a 2xx
/// to CONNECT turns the connection into a tunnel: body `until_close`). A 1xx, 204 or 304 has
/// no body.
ParseStatus parse_response_head(std::string_view bytes, bool head_request, bool connect_request,
                                ResponseHead& out);

/// `head` (a whole HTTP/1.1 response head) without its Connection fields: what a proxy sends
/// on when the server closes its connection after a response the client may keep its own open
/// for (Connection is hop-by-hop, RFC 9110 section 7.6.1).
std::string without_connection_fields(std::string_view head);

/// Finds the end of a chunked body fed to it in pieces of any size: chunk sizes, extensions,
/// data, the last chunk and the trailer section.
class ChunkedScanner {
 public:
  enum class Result { more, done, malformed };

  /// Reads `bytes` (what follows the previous call's bytes); `used` is how many belong to
  /// the body: all of them unless the body ends (`done`) within them.
  Result scan(std::string_view bytes, std::size_t& used);
  void reset() { *this = ChunkedScanner{}; }

 private:
  enum class State {
    size,
    ext,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_start,
    trailer,
    trailer_lf,
    final_lf,
    done
  };
  Result step(char c);

  State state_ = State::size;
  std::uint64_t remaining_ = 0;  // of the current chunk's data, or its size while reading it
  int digits_ = 0;
  std::size_t line_ = 0;  // bytes of the current extension or trailer section
};

/// Where a body of any framing ends, fed in pieces: the router's one loop for request and
/// response bodies alike.
class BodyFramer {
 public:
  enum class Result { more, done, malformed };

  void start(BodyKind kind, std::uint64_t content_length);
  /// How many of `bytes` (what follows the previous call's) belong to the body, in `used`.
  /// `until_close` bodies take everything and are never `done`: the peer's EOF ends them.
  Result take(std::string_view bytes, std::size_t& used);
  BodyKind kind() const { return kind_; }

 private:
  BodyKind kind_ = BodyKind::none;
  std::uint64_t remaining_ = 0;
  ChunkedScanner chunked_;
};

}  // namespace lpk::router
