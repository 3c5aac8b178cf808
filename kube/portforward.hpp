#pragma once
// One pod port-forward as a byte stream: a WebSocket with the subprotocol v4.channel.k8s.io to
// GET <server>/api/v1/namespaces/NS/pods/POD/portforward?ports=P (k8s-notes §1.3). The kubelet
// gives one WebSocket exactly one TCP connection to the pod port, so lpk runs its multiplexed
// tunnel inside it. kube/ hands the tunnel this stream and knows nothing of the tunnel.
//
// Threading: one executor. read_some() and write() may each have one call in flight at a time
// (a reader and a writer may run concurrently); close() may be called at any time.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "kube/auth.hpp"
#include "kube/config.hpp"

namespace lpk::kube {

/// Everything needed to open one port-forward; filled from a RestConfig and its credentials.
struct PortForwardTarget {
  std::string server;           // https://host:port[/path-prefix]
  std::string ca_pem;           // replaces the system roots when set
  bool insecure = false;        // insecure-skip-tls-verify
  std::string tls_server_name;  // SNI and verified name; default: the server's host
  std::string client_cert_pem;  // TLS client authentication, both or neither
  std::string client_key_pem;
  std::vector<std::pair<std::string, std::string>> headers;  // Authorization, Impersonate-*
  std::optional<std::string> proxy_url;  // unset: HTTPS_PROXY/https_proxy unless NO_PROXY matches
  std::string pod_namespace;
  std::string pod;
  std::uint16_t port = 0;
  std::chrono::milliseconds timeout{15'000};       // connect, proxy, TLS and upgrade together
  std::chrono::milliseconds idle_timeout{60'000};  // a ping goes out after half of it
  std::size_t max_message = 4 * 1024 * 1024;       // a larger server message ends the stream
};

/// The target for `pod`:`port` in `pod_namespace` with the cluster's TLS settings and `auth`
/// (headers are "Name: value" lines).
PortForwardTarget portforward_target(const RestConfig& config, const Credentials::Material& auth,
                                     std::string pod_namespace, std::string pod,
                                     std::uint16_t port);

enum class PortForwardErrc {
  bad_target = 1,        // the server URL or proxy URL cannot be used
  proxy_refused,         // the proxy refused the tunnel (CONNECT status, SOCKS5 reply, its TLS)
  upgrade_refused,       // the API server answered with something other than 101
  subprotocol_refused,   // 403 with an empty body: v4.channel.k8s.io not accepted
  subprotocol_mismatch,  // 101 without our subprotocol echoed
  remote_error,          // text on the error channel (e.g. the pod port refused)
  protocol_error,        // a frame v4 does not allow (text, unknown channel, bad port prefix)
};
const boost::system::error_category& portforward_category();
boost::system::error_code make_error_code(PortForwardErrc e);

/// Why open() failed: a code for programs and one clear sentence for people.
struct PortForwardFailure {
  boost::system::error_code code;
  std::string message;
  unsigned http_status = 0;  // the refused upgrade's status (401: credentials may need a refresh)
};
[[noreturn]] void throw_exception_from_error(const PortForwardFailure& f,
                                             const boost::source_location& loc);

class PortForward;
using PortForwardResult = boost::system::result<std::unique_ptr<PortForward>, PortForwardFailure>;

class PortForward {
 public:
  using Result = std::tuple<boost::system::error_code, std::size_t>;

  /// Connects (through the proxy if any), verifies TLS, and upgrades; all within
  /// target.timeout. A refused upgrade's message comes from its Status body when it has one.
  static boost::asio::awaitable<PortForwardResult> open(boost::asio::any_io_executor executor,
                                                        const PortForwardTarget& target);
  ~PortForward();
  PortForward(const PortForward&) = delete;
  PortForward& operator=(const PortForward&) = delete;

  /// Reads at least one byte of the pod's data. A WebSocket close is eof; text on the error
  /// channel fails with remote_error and error_text() says what the server wrote.
  boost::asio::awaitable<Result> read_some(boost::asio::mutable_buffer buffer);
  /// Writes all of `buffers` as data-channel messages of at most 32 KiB each.
  boost::asio::awaitable<Result> write(std::span<const boost::asio::const_buffer> buffers);
  /// Closes the connection at once; idempotent. Pending reads and writes fail.
  void close();
  /// Sends a WebSocket close (1000) and waits (bounded) for the server's; then close().
  boost::asio::awaitable<void> close_gracefully(std::chrono::milliseconds limit);

  /// "pod NS/POD:PORT via HOST:PORT".
  std::string describe() const;
  boost::asio::any_io_executor executor() const;
  /// What the server wrote on the error channel, or why a frame was refused.
  const std::string& error_text() const { return error_text_; }

  struct Impl;

 private:
  explicit PortForward(std::unique_ptr<Impl> impl);
  boost::system::error_code fail(PortForwardErrc code, std::string text);

  std::unique_ptr<Impl> impl_;
  std::string error_text_;
};

namespace detail {

/// What one binary v4 message from the server means; pure, so the fuzzer can drive it.
struct V4State {
  bool data_prefix_seen = false;
  bool error_prefix_seen = false;
};
struct V4Message {
  enum Kind { ignore, data, error_text, protocol_error } kind = ignore;
  std::span<const std::uint8_t> payload;  // data: the bytes for the reader; error_text: the text
  std::string problem;                    // protocol_error: what was wrong
};
/// Demultiplexes one message of a single-port forward (data channel 0, error channel 1): the
/// first message on each channel must be exactly the port prefix for `port`: 3 bytes, the
/// channel and the port as little-endian u16.
V4Message demux_v4(V4State& state, std::span<const std::uint8_t> message, std::uint16_t port);

/// NO_PROXY rules: comma list of host names, .suffixes, IPs or "*".
bool no_proxy_matches(std::string_view no_proxy, std::string_view host);
/// The sentence for a non-101 answer to the upgrade.
std::string describe_refusal(unsigned status, std::string_view reason, std::string_view body,
                             const std::string& what);

}  // namespace detail
}  // namespace lpk::kube

namespace boost::system {
template <>
struct is_error_code_enum<lpk::kube::PortForwardErrc> : std::true_type {};
}  // namespace boost::system
