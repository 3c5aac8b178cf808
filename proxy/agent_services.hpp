#pragma once
// The proxy's client of the agent services (docs/protocol.md §7): ordinary tunnel streams to
// reserved names that the agent answers itself instead of dialling.
//   env.lpk.internal:1   one JSON document with the container's environment and mounted files
//   dns.lpk.internal:53  DNS over TCP framing; the agent asks the pod's own nameserver
//
// Both are built on `OpenStream`, how the proxy hands a local socket to the tunnel
// (TunnelClient::open): this code makes a loopback socket pair, gives one end to the tunnel
// and talks on the other.
//
// Threading: everything runs on one io_context thread; AgentDnsResolver must be used from it.

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dns/cluster_resolver.hpp"
#include "proxy/tunnel/protocol.hpp"
#include "proxy/tunnel/loopback_pair.hpp"

namespace lpk::proxy {

/// The reserved targets (kept equal to the agent's; docs/protocol.md §7 is the reference).
using tunnel::kEnvServiceHost;
using tunnel::kEnvServicePort;
using tunnel::kDnsServiceHost;
using tunnel::kDnsServicePort;

/// How a local socket reaches a target through the tunnel (TunnelClient::open fits).
using OpenStream = std::function<void(boost::asio::ip::tcp::socket, tunnel::Target)>;

/// One regular file found under a reported volume mount, as the container sees it.
struct AgentFile {
  std::string path;        ///< absolute, as visible in the container ("/etc/config/app.yaml")
  std::uint32_t mode = 0;  ///< permission bits (0644 = 420)
  std::string bytes;       ///< the content, decoded from base64
};

/// A file the agent did not send, and why ("larger than 1048576 bytes", "not a regular file").
struct SkippedFile {
  std::string path;
  std::string reason;
};

/// What the agent reports about the container it replaced.
struct AgentEnvironment {
  std::map<std::string, std::string> env;  ///< the container's environment as the kubelet set it
  std::vector<AgentFile> files;
  std::vector<SkippedFile> skipped;
  std::string pod_name;       ///< may be empty when the agent could not tell
  std::string pod_namespace;  ///< may be empty when the agent could not tell
  std::string container;      ///< may be empty when the agent was not told (--container)
};

/// Why a service call failed: a code for programs, one sentence for people.
struct ServiceError {
  enum class Code { stream_failed, timed_out, bad_json, too_large };
  Code code = Code::stream_failed;
  std::string message;
};
/// Lets result<T, ServiceError>::value() throw std::runtime_error(message).
[[noreturn]] void throw_exception_from_error(const ServiceError& e,
                                             const boost::source_location& where);

template <class T>
using ServiceResult = boost::system::result<T, ServiceError>;

/// Parses the env service's document. Anything that is not the documented shape (not JSON,
/// a field of the wrong type, bad base64) is an error naming the field.
ServiceResult<AgentEnvironment> parse_environment(std::string_view json);

struct FetchOptions {
  std::chrono::milliseconds timeout{30'000};  ///< whole exchange, tunnel wait included
  std::size_t max_bytes = 64 * 1024 * 1024;   ///< the agent sends at most 16 MiB of files
};

/// Opens env.lpk.internal:1 through `open`, reads the document to its end and parses it.
boost::asio::awaitable<ServiceResult<AgentEnvironment>> fetch_environment(
    OpenStream open, FetchOptions options = {});

/// The pair both ends of an agent service use (proxy/tunnel/loopback_pair.hpp).
using tunnel::loopback_pair;

struct AgentDnsOptions {
  std::chrono::milliseconds timeout{1'800};  ///< per query; the stub's cluster timeout is 2 s
  std::size_t max_in_flight = 256;           ///< beyond it, queries fail at once (SERVFAIL)
};

/// dns::ClusterResolver that asks the cluster's DNS through the agent: one dns.lpk.internal:53
/// stream carries every query (several in flight); when the stream breaks, the queries on it
/// fail (SERVFAIL) and the next query opens a new one.
///
/// Lifetime: create with std::make_shared; stop() before the io_context goes away. Callbacks
/// run on the io thread, never inside resolve().
class AgentDnsResolver final : public dns::ClusterResolver,
                               public std::enable_shared_from_this<AgentDnsResolver> {
 public:
  AgentDnsResolver(boost::asio::any_io_executor executor, OpenStream open,
                   AgentDnsOptions options = {});
  ~AgentDnsResolver() override;

  void resolve(const std::string& name, std::uint16_t qtype, Callback done) override;

  /// Closes the stream; queries still waiting get SERVFAIL. Idempotent.
  void stop();

  std::uint64_t streams_opened() const { return streams_opened_; }

 private:
  struct Pending;
  boost::asio::awaitable<void> run_stream();
  boost::asio::awaitable<void> read_answers(boost::asio::ip::tcp::socket& socket);
  boost::asio::awaitable<void> write_queries(boost::asio::ip::tcp::socket& socket);
  boost::asio::awaitable<void> expire(std::uint16_t id, std::uint64_t seq,
                                      std::shared_ptr<boost::asio::steady_timer> timer);
  void finish(std::uint16_t id, dns::ClusterAnswer answer);
  void fail_all();
  std::uint16_t next_id();

  boost::asio::any_io_executor executor_;
  OpenStream open_;
  AgentDnsOptions options_;
  std::unordered_map<std::uint16_t, std::unique_ptr<Pending>> pending_;
  std::deque<std::vector<std::uint8_t>> out_;  ///< framed queries waiting for the writer
  boost::asio::steady_timer wake_writer_;
  bool stream_running_ = false;
  bool stopped_ = false;
  boost::asio::ip::tcp::socket* socket_ = nullptr;  ///< the live stream, for stop()
  std::uint16_t id_seed_;
  std::uint64_t seq_ = 0;
  std::uint64_t streams_opened_ = 0;
};

/// Turns a DNS response into a ClusterAnswer: rcode plus the answer section, names in
/// presentation form and rdata uncompressed. Nullopt when the packet does not parse.
std::optional<dns::ClusterAnswer> parse_cluster_answer(std::span<const std::uint8_t> packet);

/// A query for `name` (presentation form) / `qtype` with RD set and id `id`, unframed.
std::vector<std::uint8_t> make_cluster_query(std::uint16_t id, const std::string& name,
                                             std::uint16_t qtype);

}  // namespace lpk::proxy
