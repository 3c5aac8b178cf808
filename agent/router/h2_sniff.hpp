#pragma once
// The headers of the first request of a prior-knowledge HTTP/2 (h2c, gRPC) connection, found
// in the bytes its client sent, so a router can pick the connection's destination.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lpk::router {

inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How many bytes a caller buffers at most: the first request's headers must be complete
/// within them (preface included), or the connection is malformed.
inline constexpr std::size_t kMaxH2SniffBytes = 64 * 1024;

enum class SniffStatus { need_more, found, not_h2, malformed };

struct H2FirstRequest {
  SniffStatus status = SniffStatus::need_more;
  /// Decoded header fields of the first request, in order; names as sent (lower case in
  /// HTTP/2), pseudo-headers (:method, :path, :authority, :scheme) included.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// `bytes`: everything the client sent so far, from the connection preface on (the caller
/// buffers; it calls again with more bytes after need_more). not_h2: the bytes do not start
/// with the preface. malformed: a frame or header block that is not valid HTTP/2 / HPACK,
/// or more than 64 KiB before the first request's headers are complete.
/// Pure: no I/O, never throws on the bytes; work is linear in min(bytes, 64 KiB). Frames
/// before the first HEADERS (SETTINGS, WINDOW_UPDATE, PRIORITY, PING, GOAWAY, unknown types)
/// are skipped after checking their sizes; HPACK starts from an empty 4096-byte table.
H2FirstRequest sniff_h2_first_request(std::string_view bytes);

}  // namespace lpk::router
