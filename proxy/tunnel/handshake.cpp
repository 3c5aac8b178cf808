#include "proxy/tunnel/handshake.hpp"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <boost/asio/buffer.hpp>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "proxy/tunnel/codec.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::tunnel {

namespace asio = boost::asio;
using boost::system::error_code;
using boost::system::result;

namespace {

constexpr std::string_view kAuthLabel = "lpk-tunnel-v1";

asio::awaitable<error_code> read_exact(Link& link, std::span<std::byte> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    auto [ec, n] = co_await link.read_some(asio::buffer(out.data() + got, out.size() - got));
    if (ec) co_return ec;
    got += n;
  }
  co_return error_code{};
}

asio::awaitable<error_code> write_all(Link& link, std::span<const std::byte> bytes) {
  asio::const_buffer buf(bytes.data(), bytes.size());
  auto [ec, n] = co_await link.write(std::span(&buf, 1));
  co_return ec;
}

asio::awaitable<result<Hello>> read_hello(Link& link) {
  std::array<std::byte, kHelloSize> raw;
  if (auto ec = co_await read_exact(link, raw)) {
    co_return ec == asio::error::eof ? error_code(Error::truncated) : ec;
  }
  co_return decode_hello(raw);
}

// The agent refused us and says why in the GOAWAY that follows its hello.
asio::awaitable<error_code> read_refusal(Link& link) {
  std::array<std::byte, kMaxControlFrameSize> raw;
  std::size_t got = 0;
  for (;;) {
    auto step = decode_frame(std::span(raw.data(), got), kMinFramePayload);
    if (step.status == DecodeStep::Status::error) co_return step.error;
    if (step.status == DecodeStep::Status::frame) {
      auto* goaway = std::get_if<GoAwayFrame>(&step.body);
      if (!goaway) co_return Error::bad_hello;
      switch (goaway->code) {
        case GoAwayCode::auth_failed: co_return Error::auth_failed;
        case GoAwayCode::version_mismatch: co_return Error::bad_version;
        default: co_return Error::bad_role;
      }
    }
    if (got == raw.size()) co_return Error::bad_frame;
    auto [ec, n] = co_await link.read_some(asio::buffer(raw.data() + got, raw.size() - got));
    if (ec) co_return Error::auth_failed;  // closed before the reason arrived
    got += n;
  }
}

}  // namespace

std::array<std::byte, kAuthSize> compute_auth(std::string_view secret, Role role,
                                              const SessionId& id) {
  std::array<std::byte, kAuthSize> mac{};
  if (secret.empty()) return mac;
  std::array<unsigned char, kAuthLabel.size() + 1 + kSessionIdSize> msg;
  std::memcpy(msg.data(), kAuthLabel.data(), kAuthLabel.size());
  msg[kAuthLabel.size()] = static_cast<unsigned char>(role);
  std::memcpy(msg.data() + kAuthLabel.size() + 1, id.data(), id.size());
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), int(secret.size()), msg.data(), msg.size(),
       reinterpret_cast<unsigned char*>(mac.data()), &len);
  return mac;
}

bool verify_auth(const Hello& hello, std::string_view secret) {
  if (secret.empty()) return !hello.has_auth;
  if (!hello.has_auth) return false;
  auto expected = compute_auth(secret, hello.role, hello.session_id);
  return CRYPTO_memcmp(expected.data(), hello.auth.data(), kAuthSize) == 0;
}

std::string to_hex(const SessionId& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (auto b : id) {
    s += kHex[std::to_integer<int>(b) >> 4];
    s += kHex[std::to_integer<int>(b) & 15];
  }
  return s;
}

SessionId random_session_id() {
  SessionId id;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(id.data()), int(id.size())) != 1) {
    std::random_device rd;  // OpenSSL's generator failing is near impossible; still be unique
    for (auto& b : id) b = std::byte(rd());
  }
  return id;
}

std::string random_secret() {
  SessionId first, second;  // 2 x 16 bytes
  for (auto* half : {&first, &second}) {
    // No fallback: a guessable secret would be worse than none that claims to protect.
    if (RAND_bytes(reinterpret_cast<unsigned char*>(half->data()), int(half->size())) != 1) {
      throw std::runtime_error("cannot make a tunnel secret: OpenSSL's random generator failed");
    }
  }
  return to_hex(first) + to_hex(second);
}

asio::awaitable<result<HandshakeResult>> handshake_as_proxy(Link& link, Hello local,
                                                            std::string_view secret) {
  local.role = Role::proxy;
  local.has_auth = !secret.empty();
  local.auth = compute_auth(secret, Role::proxy, local.session_id);
  if (auto ec = co_await write_all(link, encode_hello(local))) co_return ec;
  auto peer = co_await read_hello(link);
  if (!peer) co_return peer.error();
  if (peer->role != Role::agent) co_return Error::bad_role;
  if (peer->refused) co_return co_await read_refusal(link);
  if (peer->session_id != local.session_id) co_return Error::bad_hello;
  // The agent's own proof is checked too, so that a stranger on the port cannot pose as it:
  // one that proves nothing is refused as one that proves another secret. (A real agent with
  // a different secret says so instead, as a GOAWAY right after its hello.)
  if (!secret.empty() && !verify_auth(*peer, secret)) {
    co_return Error::auth_failed;
  }
  co_return HandshakeResult{local, *peer};
}

asio::awaitable<result<HandshakeResult>> handshake_as_agent(
    Link& link, Hello local, std::string_view secret,
    const std::function<bool(const Hello& proxy)>& holds) {
  std::array<std::byte, kHelloSize> raw;
  if (auto ec = co_await read_exact(link, raw)) {
    co_return ec == asio::error::eof ? error_code(Error::truncated) : ec;
  }
  auto peer = decode_hello(raw);
  if (!peer && peer.error() == Error::bad_magic) co_return peer.error();  // not our protocol

  local.role = Role::agent;
  local.session_id = peer ? peer->session_id : SessionId{};
  local.has_auth = !secret.empty();
  local.auth = compute_auth(secret, Role::agent, local.session_id);
  error_code refusal;
  GoAwayCode code = GoAwayCode::protocol_error;
  std::string reason;
  if (!peer) {
    refusal = peer.error();
    if (refusal == Error::bad_version) code = GoAwayCode::version_mismatch;
    reason = "agent speaks lpk tunnel protocol version " + std::to_string(kProtocolVersion) +
             "; " + refusal.message();
  } else if (peer->role != Role::proxy) {
    refusal = Error::bad_role;
    reason = "the peer is not an lpk-proxy";
  } else if (!verify_auth(*peer, secret)) {
    refusal = Error::auth_failed;
    code = GoAwayCode::auth_failed;
    reason = secret.empty()    ? "the agent has no shared secret but the proxy sent one"
             : peer->has_auth ? "the shared secret does not match the agent's"
                              : "the agent requires a shared secret; give the proxy --secret-file";
  }
  local.refused = bool(refusal);
  local.resume = !refusal && peer->resume && (local.capabilities & kCapResume) &&
                 (peer->capabilities & kCapResume) && holds && holds(*peer);
  if (auto ec = co_await write_all(link, encode_hello(local))) co_return ec;
  if (refusal) {
    auto goaway = encode_go_away(0, code, reason);
    co_await write_all(link, goaway.view());
    co_return refusal;
  }
  co_return HandshakeResult{local, *peer};
}

Result<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Problem{std::make_error_code(std::errc::no_such_file_or_directory),
                   "cannot read the secret file " + path};
  }
  std::stringstream s;
  s << in.rdbuf();
  auto secret = s.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    return Problem{std::make_error_code(std::errc::invalid_argument),
                   "the secret file " + path + " is empty"};
  }
  return secret;
}

}  // namespace lpk::tunnel
