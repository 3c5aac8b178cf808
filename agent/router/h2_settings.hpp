#pragma once
// What the router itself says on an HTTP/2 connection before it knows the backend: a SETTINGS
// frame of its own, so that a client that waits for the server's SETTINGS before its first
// request (grpc-go does) sends that request, by which the connection is routed. The client
// acknowledges that SETTINGS; the backend, which never sent it, must not see the ACK:
// SettingsAckFilter finds it in the client's byte stream. Pure: no I/O, never throws.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lpk::router {

/// An empty SETTINGS frame (every setting at its default; RFC 9113 section 6.5).
inline constexpr std::string_view kEmptySettingsFrame{"\0\0\0\x04\0\0\0\0\0", 9};

/// Finds the client's first SETTINGS ACK (RFC 9113 section 6.5.3), fed the client's stream
/// from its connection preface on, in pieces.
class SettingsAckFilter {
 public:
  struct Step {
    std::size_t pass = 0;  ///< bytes at the front of `bytes` that go on unchanged
    bool found = false;    ///< the 9 bytes after them are the ACK, to be dropped
  };
  /// Looks at `bytes`, the stream's bytes not yet passed. Once found(), every later byte
  /// passes: call no more.
  Step scan(std::string_view bytes);
  bool found() const { return found_; }

 private:
  std::uint64_t skip_ = 24;  // the preface, then each frame's payload
  bool found_ = false;
};

}  // namespace lpk::router
