#pragma once
// The hello exchange that starts every link. The proxy speaks first; the agent answers with
// the same session id, then (if it refuses the proxy) a GOAWAY that says why.

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "proxy/tunnel/error.hpp"
#include "proxy/tunnel/link.hpp"
#include "proxy/tunnel/protocol.hpp"

namespace lpk::tunnel {

/// HMAC-SHA256(secret, "lpk-tunnel-v1" | role | session id): proves the secret without
/// sending it. An empty secret means no authentication.
std::array<std::byte, kAuthSize> compute_auth(std::string_view secret, Role role,
                                              const SessionId& id);
bool verify_auth(const Hello& hello, std::string_view secret);
SessionId random_session_id();
/// A fresh shared secret: 32 bytes from OpenSSL's generator, as 64 hex digits (text, so that it
/// can travel in an environment variable). Throws std::runtime_error if the generator fails.
std::string random_secret();
/// The shared secret in `path` (`--secret-file` of both ends), without its trailing newline.
/// A Problem when the file cannot be read or is empty.
Result<std::string> read_secret_file(const std::string& path);
/// The id in lower-case hex, for logs and directory names.
std::string to_hex(const SessionId& id);

struct HandshakeResult {
  Hello local;
  Hello peer;
};

/// Proxy side: sends `local`, reads and checks the agent's hello.
boost::asio::awaitable<boost::system::result<HandshakeResult>> handshake_as_proxy(
    Link& link, Hello local, std::string_view secret);

/// Agent side: reads and checks the proxy's hello, answers with `local` (taking the proxy's
/// session id); on a bad secret or version it answers and then sends a GOAWAY with the reason.
/// When the proxy asks to resume and both announced the capability, the answer's `resume`
/// flag is what `holds(proxy's hello)` says: whether this side still holds that session.
boost::asio::awaitable<boost::system::result<HandshakeResult>> handshake_as_agent(
    Link& link, Hello local, std::string_view secret,
    const std::function<bool(const Hello& proxy)>& holds = {});

}  // namespace lpk::tunnel
