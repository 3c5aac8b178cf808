#pragma once
// Shared by the UDP and TCP fronts: parses a query, answers it from the table or the cache at
// once (the hot path), or starts the slow path (upstream, cluster, ExternalName target) and
// replies later through a callback.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "dns/cluster_resolver.hpp"
#include "dns/name_table.hpp"
#include "dns/resolver.hpp"
#include "dns/upstream.hpp"

namespace lpk::dns::detail {

struct EngineStats {
  std::uint64_t queries = 0, answered_local = 0, cache_hits = 0, forwarded = 0, cluster = 0,
                errors = 0, dropped = 0, servfail = 0;
};

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  /// Sends a late response; the vector may be modified (fitted to UDP).
  using Reply = std::function<void(std::vector<std::uint8_t>&)>;
  enum class Result { kDrop, kReply, kLater };

  Engine(boost::asio::io_context& io, std::shared_ptr<const NameTable> table, Upstream* upstream,
         ClusterResolver* cluster, std::chrono::milliseconds cluster_timeout)
      : io_(io),
        table_(std::move(table)),
        upstream_(upstream),
        cluster_(cluster),
        cluster_timeout_(cluster_timeout) {}

  /// kReply: send `out` now. kLater: `make_reply()` was taken and will be called once (or never
  /// if the server stops). `q` is scratch space reused between calls.
  template <class MakeReply>
  Result handle(std::span<const std::uint8_t> packet, bool udp, Query& q,
                std::vector<std::uint8_t>& out, MakeReply&& make_reply) {
    ++stats_.queries;
    const ParseStatus st = parse_query(packet, q);
    if (st != ParseStatus::kOk) {
      ++stats_.errors;
      if (error_response(st, q, out)) return Result::kReply;
      ++stats_.dropped;
      return Result::kDrop;
    }
    Decision d = resolve(*table_, q, out);
    if (d.action == Action::kRespond) {
      ++stats_.answered_local;
    } else if (d.action == Action::kForward && upstream_ && upstream_->cached(q, out)) {
      ++stats_.cache_hits;
    } else if (!slow_path(q, d, udp, out, make_reply)) {
      return Result::kLater;
    }
    if (udp) fit_udp(q, out);
    return Result::kReply;
  }

  void set_table(std::shared_ptr<const NameTable> t) { table_ = std::move(t); }
  const std::shared_ptr<const NameTable>& table() const { return table_; }
  const EngineStats& stats() const { return stats_; }

 private:
  struct Held;  // a copy of the query for the slow path
  template <class MakeReply>
  bool slow_path(const Query& q, Decision& d, bool udp, std::vector<std::uint8_t>& out,
                 MakeReply& make_reply) {
    // Answers that need nobody else are still immediate (no upstream, no cluster resolver).
    if (d.action == Action::kForward && !upstream_) {
      empty_response(q, rcode::kServFail, out);
      return true;
    }
    if (d.action == Action::kAskCluster && !cluster_) {
      build_response(q, rcode::kNxDomain, true, {}, 0, table_->soa_record(), 1, out);
      return true;
    }
    if (d.action == Action::kExternal && !upstream_ && !table_->find(d.target)) return true;
    start(q, d, udp, out, make_reply());
    return false;
  }
  void start(const Query& q, Decision& d, bool udp, std::vector<std::uint8_t>& out, Reply reply);
  void forward(std::shared_ptr<Held> h);
  void ask_cluster(std::shared_ptr<Held> h, std::string target);
  void external(std::shared_ptr<Held> h, std::string target, std::string cname_rr);
  void finish(Held& h, std::vector<std::uint8_t>& response);

  boost::asio::io_context& io_;
  std::shared_ptr<const NameTable> table_;
  Upstream* upstream_;
  ClusterResolver* cluster_;
  std::chrono::milliseconds cluster_timeout_;
  EngineStats stats_;
};

}  // namespace lpk::dns::detail
