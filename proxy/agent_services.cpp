#include "proxy/agent_services.hpp"

// ldns defines true/false as macros unless stdbool.h came first; fmt templates break on them.
#include <stdbool.h>
// clang-format off
#include <ldns/ldns.h>
// clang-format on
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
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

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
std::uint8_t lower(std::uint8_t c) { return c >= 'A' && c <= 'Z' ? std::uint8_t(c + 32) : c; }

ServiceError error(ServiceError::Code code, std::string message) {
  return ServiceError{code, std::move(message)};
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

/// Length of the question section (one question) starting at offset 12, or 0.
std::size_t question_size(std::span<const std::uint8_t> m) {
  std::size_t pos = kHeader;
  while (pos < m.size() && m[pos] != 0) {
    if (m[pos] > 63) return 0;
    pos += m[pos] + 1;
  }
  pos += 5;
  return pos <= m.size() ? pos - kHeader : 0;
}

std::string presentation(const std::uint8_t* wire, std::size_t size) {
  std::string out;
  std::size_t pos = 0;
  while (pos < size && wire[pos] != 0) {
    const std::size_t len = wire[pos];
    if (pos + 1 + len > size) break;
    out.append(reinterpret_cast<const char*>(wire + pos + 1), len);
    out.push_back('.');
    pos += 1 + len;
  }
  return out.empty() ? "." : out;
}

std::optional<std::string> base64_decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const int d = k >= 4 - pad ? 0 : value(text[i + std::size_t(k)]);
      if (d < 0) return std::nullopt;
      v = (v << 6) | std::uint32_t(d);
    }
    out.push_back(char(v >> 16));
    if (pad < 2) out.push_back(char(v >> 8));
    if (pad < 1) out.push_back(char(v));
  }
  return out;
}

using Json = nlohmann::json;

bool fail(std::string& why, std::string text) {
  why = std::move(text);
  return false;
}

/// The string at `key` of `object`, or an error naming `where`.
bool get_string(const Json& object, const char* key, const std::string& where, std::string& out,
                std::string& why, bool required = true) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) why = where + "." + key + " is missing";
    return !required;
  }
  if (!it->is_string()) {
    why = where + "." + key + " is not a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

bool parse_files(const Json& doc, AgentEnvironment& env, std::string& why) {
  auto files = doc.find("files");
  if (files == doc.end() || !files->is_array()) return fail(why, "files is not an array");
  for (std::size_t i = 0; i < files->size(); ++i) {
    const auto& f = (*files)[i];
    const auto where = "files[" + std::to_string(i) + "]";
    if (!f.is_object()) return fail(why, where + " is not an object");
    AgentFile file;
    std::string data;
    if (!get_string(f, "path", where, file.path, why) || !get_string(f, "data", where, data, why)) {
      return false;
    }
    auto mode = f.find("mode");
    if (mode == f.end() || !mode->is_number_unsigned() || mode->get<std::uint64_t>() > 07777) {
      return fail(why, where + ".mode is not a file mode");
    }
    file.mode = mode->get<std::uint32_t>();
    auto bytes = base64_decode(data);
    if (!bytes) return fail(why, where + ".data is not base64");
    file.bytes = std::move(*bytes);
    env.files.push_back(std::move(file));
  }
  return true;
}

bool parse_document(const Json& doc, AgentEnvironment& env, std::string& why) {
  if (!doc.is_object()) return fail(why, "the document is not a JSON object");
  auto vars = doc.find("env");
  if (vars == doc.end() || !vars->is_object()) return fail(why, "env is not an object");
  for (const auto& [key, value] : vars->items()) {
    if (!value.is_string()) return fail(why, "env." + key + " is not a string");
    env.env.emplace(key, value.get<std::string>());
  }
  if (!parse_files(doc, env, why)) return false;
  auto skipped = doc.find("skipped");
  if (skipped == doc.end() || !skipped->is_array()) return fail(why, "skipped is not an array");
  for (std::size_t i = 0; i < skipped->size(); ++i) {
    const auto where = "skipped[" + std::to_string(i) + "]";
    const auto& s = (*skipped)[i];
    if (!s.is_object()) return fail(why, where + " is not an object");
    SkippedFile file;
    if (!get_string(s, "path", where, file.path, why) ||
        !get_string(s, "reason", where, file.reason, why)) {
      return false;
    }
    env.skipped.push_back(std::move(file));
  }
  // Pod and container are informative: absent is fine, the wrong type is not.
  if (auto pod = doc.find("pod"); pod != doc.end() && !pod->is_null()) {
    if (!pod->is_object()) return fail(why, "pod is not an object");
    if (!get_string(*pod, "name", "pod", env.pod_name, why, false) ||
        !get_string(*pod, "namespace", "pod", env.pod_namespace, why, false)) {
      return false;
    }
  }
  return get_string(doc, "container", "document", env.container, why, false);
}

}  // namespace

ServiceResult<AgentEnvironment> parse_environment(std::string_view json) {
  auto doc = Json::parse(json.begin(), json.end(), nullptr, false);
  if (doc.is_discarded()) {
    return error(ServiceError::Code::bad_json,
                 "the agent's environment is not valid JSON (" + std::to_string(json.size()) +
                     " bytes); the agent and lpk-proxy may be of different versions");
  }
  AgentEnvironment env;
  std::string why;
  if (!parse_document(doc, env, why)) {
    return error(ServiceError::Code::bad_json, "the agent's environment is malformed: " + why);
  }
  return env;
}

void throw_exception_from_error(const ServiceError& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

asio::awaitable<ServiceResult<AgentEnvironment>> fetch_environment(OpenStream open,
                                                                   FetchOptions options) {
  using Code = ServiceError::Code;
  auto executor = co_await asio::this_coro::executor;
  auto pair = loopback_pair(executor);
  if (!pair) {
    co_return error(Code::stream_failed,
                    "cannot make a loopback socket pair: " + pair.error().message());
  }
  auto& [ours, tunnel_end] = *pair;
  tunnel::Target target{tunnel::Target::Kind::name, std::string(kEnvServiceHost), kEnvServicePort};
  open(std::move(tunnel_end), target);
  std::string doc;
  asio::steady_timer deadline(executor, options.timeout);
  auto outcome = co_await (read_all(ours, doc, options.max_bytes) || deadline.async_wait(kTuple));
  if (outcome.index() == 1) {
    co_return error(Code::timed_out, "the agent sent no environment within " +
                                         std::to_string(options.timeout.count()) +
                                         " ms (is the tunnel up?)");
  }
  auto ec = std::get<0>(outcome);
  if (ec == asio::error::message_size) {
    co_return error(Code::too_large, "the agent's environment is larger than " +
                                         std::to_string(options.max_bytes) + " bytes");
  }
  if (ec) {
    co_return error(Code::stream_failed,
                    "the env.lpk.internal stream failed (" + ec.message() +
                        "): the agent refused it or is older than this lpk-proxy");
  }
  co_return parse_environment(doc);
}

// ---- AgentDnsResolver ----

struct AgentDnsResolver::Pending {
  Callback done;
  std::uint64_t seq = 0;
  std::vector<std::uint8_t> question;  ///< wire form, to match the answer
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
  auto query = make_cluster_query(id, name, qtype);
  if (stopped_ || query.empty() || pending_.size() >= options_.max_in_flight) {
    const std::uint8_t rcode = query.empty() ? 1 : kServFail;  // FORMERR for a bad name
    asio::post(executor_, [done = std::move(done), rcode] { done(dns::ClusterAnswer{rcode, {}}); });
    return;
  }
  auto p = std::make_unique<Pending>();
  p->done = std::move(done);
  p->seq = ++seq_;
  const auto qsize = question_size(query);
  p->question.assign(query.begin() + kHeader, query.begin() + std::ptrdiff_t(kHeader + qsize));
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
  auto pair = loopback_pair(executor_);
  if (pair) {
    auto& [ours, tunnel_end] = *pair;
    socket_ = &ours;
    tunnel::Target target{tunnel::Target::Kind::name, std::string(kDnsServiceHost),
                          kDnsServicePort};
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
    const auto& q = it->second->question;
    if (message.size() < kHeader + q.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < q.size() && same; ++i)
      same = lower(message[kHeader + i]) == lower(q[i]);
    if (!same) continue;
    auto answer = parse_cluster_answer(message);
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

std::vector<std::uint8_t> make_cluster_query(std::uint16_t id, const std::string& name,
                                             std::uint16_t qtype) {
  std::vector<std::uint8_t> q(kHeader, 0);
  put16(&q[0], id);
  q[2] = 0x01;  // RD
  put16(&q[4], 1);
  put16(&q[10], 1);  // the OPT record below
  std::size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const auto len = dot - start;
    if (len == 0 || len > 63) return {};
    q.push_back(std::uint8_t(len));
    q.insert(q.end(), name.begin() + std::ptrdiff_t(start), name.begin() + std::ptrdiff_t(dot));
    start = dot + 1;
  }
  q.push_back(0);
  if (q.size() - kHeader > 255) return {};
  const std::uint8_t tail[] = {std::uint8_t(qtype >> 8), std::uint8_t(qtype), 0, 1,
                               // OPT: root owner, type 41, UDP size 1232, no flags, no data
                               0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0};
  q.insert(q.end(), std::begin(tail), std::end(tail));
  return q;
}

std::optional<dns::ClusterAnswer> parse_cluster_answer(std::span<const std::uint8_t> packet) {
  ldns_pkt* pkt = nullptr;
  if (ldns_wire2pkt(&pkt, packet.data(), packet.size()) != LDNS_STATUS_OK) return std::nullopt;
  dns::ClusterAnswer answer;
  answer.rcode = std::uint8_t(ldns_pkt_get_rcode(pkt));
  const ldns_rr_list* rrs = ldns_pkt_answer(pkt);
  ldns_buffer* buffer = ldns_buffer_new(512);
  for (std::size_t i = 0; i < ldns_rr_list_rr_count(rrs); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(rrs, i);
    if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) continue;
    // ldns keeps names uncompressed, so rdata written back is self-contained.
    ldns_buffer_clear(buffer);
    if (ldns_rr_rdata2buffer_wire(buffer, rr) != LDNS_STATUS_OK) continue;
    const ldns_rdf* owner = ldns_rr_owner(rr);
    dns::ClusterRecord record;
    record.name = presentation(ldns_rdf_data(owner), ldns_rdf_size(owner));
    record.type = std::uint16_t(ldns_rr_get_type(rr));
    record.ttl = ldns_rr_ttl(rr);
    const auto* data = ldns_buffer_begin(buffer);
    record.rdata.assign(data, data + ldns_buffer_position(buffer));
    answer.records.push_back(std::move(record));
  }
  ldns_buffer_free(buffer);
  ldns_pkt_free(pkt);
  return answer;
}

}  // namespace lpk::proxy
