#include "proxy/connect/agent_services.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <random>

#include "dns/cluster_answer.hpp"
#include "proxy/tunnel/loopback_pair.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kHeader = 12;
constexpr std::uint8_t kServFail = 2;

std::uint16_t get16(const std::uint8_t* p) { return std::uint16_t((p[0] << 8) | p[1]); }
void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = std::uint8_t(v >> 8);
  p[1] = std::uint8_t(v);
}
/// Reads until the peer closes; message_size when more than `max` bytes arrive.
asio::awaitable<error_code> read_all(tcp::socket& socket, std::string& out, std::size_t max) {
  std::array<char, 64 * 1024> chunk;
  while (true) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), kTuple);
    out.append(chunk.data(), n);
    if (ec == asio::error::eof) co_return error_code{};
    if (ec) co_return ec;
    if (out.size() > max) co_return asio::error::message_size;
  }
}

}  // namespace

asio::awaitable<tunnel::Result<tunnel::AgentEnvironment>> fetch_environment(
    OpenStream open, FetchOptions options) {
  using tunnel::Problem;
  auto executor = co_await asio::this_coro::executor;
  auto pair = tunnel::loopback_pair(executor);
  if (!pair) {
    co_return Problem{pair.error(),
                      "cannot make a loopback socket pair: " + pair.error().message()};
  }
  auto& [ours, tunnel_end] = *pair;
  tunnel::Target target{tunnel::Target::Kind::name, std::string(tunnel::kEnvServiceHost),
                        tunnel::kEnvServicePort};
  open(std::move(tunnel_end), target);
  std::string doc;
  asio::steady_timer deadline(executor, options.timeout);
  auto outcome = co_await (read_all(ours, doc, options.max_bytes) || deadline.async_wait(kTuple));
  if (outcome.index() == 1) {
    co_return Problem{asio::error::timed_out, "the agent sent no environment within " +
                                                  std::to_string(options.timeout.count()) +
                                                  " ms (is the tunnel up?)"};
  }
  auto ec = std::get<0>(outcome);
  if (ec == asio::error::message_size) {
    co_return Problem{ec, "the agent's environment is larger than " +
                              std::to_string(options.max_bytes) + " bytes"};
  }
  if (ec) {
    co_return Problem{ec, "the env.lpk.internal stream failed (" + ec.message() +
                              "): the agent refused it or is older than this lpk-proxy"};
  }
  co_return tunnel::parse_environment(doc);
}

asio::awaitable<tunnel::Result<nlohmann::json>> fetch_json(OpenStream open, std::string host,
                                                           std::uint16_t port, std::string path,
                                                           FetchOptions options) {
  using tunnel::Problem;
  auto executor = co_await asio::this_coro::executor;
  auto pair = tunnel::loopback_pair(executor);
  if (!pair) co_return Problem{pair.error(), "cannot make a loopback socket pair"};
  auto& [ours, tunnel_end] = *pair;
  open(std::move(tunnel_end), tunnel::Target{tunnel::Target::Kind::name, host, port});
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host +
                        "\r\nConnection: close\r\n\r\n";
  std::string reply;
  asio::steady_timer deadline(executor, options.timeout);
  auto outcome = co_await ((asio::async_write(ours, asio::buffer(request), kTuple) &&
                            read_all(ours, reply, options.max_bytes)) ||
                           deadline.async_wait(kTuple));
  auto where = host + ":" + std::to_string(port) + path;
  if (outcome.index() == 1) {
    co_return Problem{asio::error::timed_out, where + " did not answer in time"};
  }
  auto [write_ec, written, read_ec] = std::get<0>(outcome);
  if (auto ec = write_ec ? write_ec : read_ec) co_return Problem{ec, where + ": " + ec.message()};
  auto body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) != 0 || reply.size() < 12 || reply.compare(9, 3, "200") != 0 ||
      body == std::string::npos) {
    co_return Problem{tunnel::Error::bad_document,
                      where + " answered " + reply.substr(0, reply.find('\r'))};
  }
  auto parsed = nlohmann::json::parse(reply.substr(body + 4), nullptr, false);
  if (parsed.is_discarded()) co_return Problem{tunnel::Error::bad_document, where + ": not JSON"};
  co_return parsed;
}

// ---- AgentDnsResolver ----

struct AgentDnsResolver::Pending {
  Callback done;
  std::uint64_t seq = 0;
  std::vector<std::uint8_t> query;  ///< wire form, to match the answer's question
  std::shared_ptr<asio::steady_timer> timer;
};

AgentDnsResolver::AgentDnsResolver(asio::any_io_executor executor, OpenStream open,
                                   AgentDnsOptions options)
    : executor_(std::move(executor)),
      open_(std::move(open)),
      options_(options),
      wake_writer_(executor_),
      id_seed_(std::uint16_t(std::random_device{}())) {}

AgentDnsResolver::~AgentDnsResolver() = default;

std::uint16_t AgentDnsResolver::next_id() {
  std::uint16_t id;
  do {
    id_seed_ = std::uint16_t(id_seed_ * 25173 + 13849);
    id = id_seed_;
  } while (pending_.count(id));
  return id;
}

void AgentDnsResolver::resolve(const std::string& name, std::uint16_t qtype, Callback done) {
  const auto id = next_id();
  auto query = dns::make_cluster_query(id, name, qtype);
  if (stopped_ || query.empty() || pending_.size() >= options_.max_in_flight) {
    const std::uint8_t rcode = query.empty() ? 1 : kServFail;  // FORMERR for a bad name
    asio::post(executor_, [done = std::move(done), rcode] { done(dns::ClusterAnswer{rcode, {}}); });
    return;
  }
  auto p = std::make_unique<Pending>();
  p->done = std::move(done);
  p->seq = ++seq_;
  p->query = query;
  p->timer = std::make_shared<asio::steady_timer>(executor_, options_.timeout);
  asio::co_spawn(
      executor_,
      [self = shared_from_this(), id, seq = p->seq, timer = p->timer] {
        return self->expire(id, seq, timer);
      },
      asio::detached);
  pending_.emplace(id, std::move(p));
  std::vector<std::uint8_t> framed(2 + query.size());
  put16(framed.data(), std::uint16_t(query.size()));
  std::copy(query.begin(), query.end(), framed.begin() + 2);
  out_.push_back(std::move(framed));
  if (!stream_running_) {
    stream_running_ = true;
    asio::co_spawn(
        executor_, [self = shared_from_this()] { return self->run_stream(); }, asio::detached);
  } else {
    wake_writer_.cancel();
  }
}

void AgentDnsResolver::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (socket_) {
    error_code ec;
    socket_->close(ec);
  }
  wake_writer_.cancel();
  fail_all();
}

asio::awaitable<void> AgentDnsResolver::run_stream() {
  ++streams_opened_;
  auto pair = tunnel::loopback_pair(executor_);
  if (pair) {
    auto& [ours, tunnel_end] = *pair;
    socket_ = &ours;
    tunnel::Target target{tunnel::Target::Kind::name, std::string(tunnel::kDnsServiceHost),
                          tunnel::kDnsServicePort};
    open_(std::move(tunnel_end), target);
    co_await (read_answers(ours) || write_queries(ours));
    socket_ = nullptr;
  } else {
    spdlog::warn("cluster DNS: cannot make a loopback socket pair: {}", pair.error().message());
  }
  // Whatever was asked on this stream is lost with it; the next query opens a new one.
  stream_running_ = false;
  fail_all();
}

asio::awaitable<void> AgentDnsResolver::read_answers(tcp::socket& socket) {
  std::array<std::uint8_t, 2> size{};
  while (true) {
    auto [ec, n] = co_await asio::async_read(socket, asio::buffer(size), kTuple);
    if (ec) co_return;
    std::vector<std::uint8_t> message(get16(size.data()));
    auto [rec, m] = co_await asio::async_read(socket, asio::buffer(message), kTuple);
    if (rec) co_return;
    if (message.size() < kHeader) continue;
    const auto id = get16(message.data());
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    // A late answer to a query that timed out could carry a reused id: match the question.
    if (!dns::answers_question(message, it->second->query)) continue;
    auto answer = dns::parse_cluster_answer(message);
    finish(id, answer ? std::move(*answer) : dns::ClusterAnswer{kServFail, {}});
  }
}

asio::awaitable<void> AgentDnsResolver::write_queries(tcp::socket& socket) {
  while (!stopped_) {
    if (out_.empty()) {
      wake_writer_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_writer_.async_wait(kTuple);
      auto cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none) co_return;
      continue;
    }
    auto packet = std::move(out_.front());
    out_.pop_front();
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(packet), kTuple);
    if (ec) co_return;
  }
}

asio::awaitable<void> AgentDnsResolver::expire(std::uint16_t id, std::uint64_t seq,
                                               std::shared_ptr<asio::steady_timer> timer) {
  auto [ec] = co_await timer->async_wait(kTuple);
  auto it = pending_.find(id);
  if (ec || it == pending_.end() || it->second->seq != seq) co_return;
  finish(id, dns::ClusterAnswer{kServFail, {}});
}

void AgentDnsResolver::finish(std::uint16_t id, dns::ClusterAnswer answer) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  auto done = std::move(it->second->done);
  it->second->timer->cancel();
  pending_.erase(it);
  done(std::move(answer));
}

void AgentDnsResolver::fail_all() {
  // Taken out first: a callback may call resolve(), which must start on a clean slate.
  auto pending = std::move(pending_);
  pending_.clear();
  out_.clear();
  for (auto& [id, p] : pending) {
    p->timer->cancel();
    p->done(dns::ClusterAnswer{kServFail, {}});
  }
}

}  // namespace lpk::proxy
