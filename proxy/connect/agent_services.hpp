#pragma once
// The proxy's client of the agent services (proxy/tunnel/agent_services.hpp): ordinary tunnel
// streams to reserved names that the agent answers itself instead of dialling.
//   env.lpk.internal:1   one JSON document with the container's environment and mounted files
//   dns.lpk.internal:53  DNS over TCP framing; the agent asks the pod's own nameserver
//
// Both are built on `OpenStream`, how the proxy hands a local socket to the tunnel
// (TunnelClient::open): this code makes a loopback socket pair, gives one end to the tunnel
// and talks on the other.
//
// Threading: everything runs on one io_context thread; AgentDnsResolver must be used from it.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/cluster_resolver.hpp"
#include "proxy/forward/forwarder.hpp"
#include "proxy/tunnel/agent_services.hpp"

namespace lpk::proxy {

struct FetchOptions {
  std::chrono::milliseconds timeout{30'000};  ///< whole exchange, tunnel wait included
  std::size_t max_bytes = 64 * 1024 * 1024;   ///< the agent sends at most 16 MiB of files
};

/// Opens env.lpk.internal:1 through `open`, reads the document to its end and parses it
/// (tunnel::parse_environment). The Problem's code is asio's timed_out or message_size, the
/// stream's own error, or tunnel::Error::bad_document.
boost::asio::awaitable<tunnel::Result<tunnel::AgentEnvironment>> fetch_environment(
    OpenStream open, FetchOptions options = {});

/// GET `path` of the HTTP server at `host`:`port` in the cluster (the agent dials it), with
/// Connection: close, and parses the body of a 200 as JSON. Small documents only (status
/// pages): at most options.max_bytes.
boost::asio::awaitable<tunnel::Result<nlohmann::json>> fetch_json(OpenStream open,
                                                                  std::string host,
                                                                  std::uint16_t port,
                                                                  std::string path,
                                                                  FetchOptions options);

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

}  // namespace lpk::proxy
