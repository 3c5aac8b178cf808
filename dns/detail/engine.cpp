#include "dns/detail/engine.hpp"

#include <ldns/ldns.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "dns/detail/wire.hpp"

namespace lpk::dns::detail {
namespace {

// The table's records name their owner with a pointer to the question; an ExternalName chain
// needs them under the target's name instead.
std::string rebase(const RrSet& set, const std::string& owner) {
  std::string out;
  for (std::size_t pos = 0; pos + 12 <= set.wire.size();) {
    const std::size_t rdlen =
        get16(reinterpret_cast<const std::uint8_t*>(set.wire.data()) + pos + 10);
    out += owner;
    out.append(set.wire, pos + 2, 10 + rdlen);
    pos += 12 + rdlen;
  }
  return out;
}

void cluster_response(const Query& q, const ClusterAnswer& a, const std::string& target,
                      const NameTable& table, std::vector<std::uint8_t>& out) {
  std::string answers;
  std::uint16_t count = 0;
  for (const auto& rec : a.records) {
    auto owner = to_wire(rec.name);
    if (!owner || rec.rdata.size() > 0xFFFF) continue;
    if (*owner == target) {
      append16(answers, kPointerToQuestion);
    } else {
      answers += *owner;
    }
    append16(answers, rec.type);
    append16(answers, kClassIn);
    append32(answers, rec.ttl);
    append16(answers, static_cast<std::uint16_t>(rec.rdata.size()));
    answers.append(rec.rdata.begin(), rec.rdata.end());
    ++count;
  }
  const bool negative = a.rcode == rcode::kNxDomain || (a.rcode == rcode::kNoError && count == 0);
  build_response(q, a.rcode, true, answers, count, negative ? table.soa_record() : std::string(),
                 negative ? 1 : 0, out);
}

}  // namespace

struct Engine::Held {
  std::vector<std::uint8_t> packet;
  Query q;
  bool udp = false;
  Reply reply;
};

void Engine::start(const Query& q, Decision& d, bool udp, std::vector<std::uint8_t>& out,
                   Reply reply) {
  auto h = std::make_shared<Held>();
  h->packet.assign(q.packet.begin(), q.packet.end());
  parse_query(h->packet, h->q);
  h->udp = udp;
  h->reply = std::move(reply);
  switch (d.action) {
    case Action::kForward:
      ++stats_.forwarded;
      forward(std::move(h));
      break;
    case Action::kAskCluster:
      ++stats_.cluster;
      ask_cluster(std::move(h), std::move(d.target));
      break;
    default: {
      // `out` holds header, question, the CNAME record (owner pointer + 10 + target), OPT.
      const auto begin = out.begin() + static_cast<std::ptrdiff_t>(q.question_end);
      std::string cname(begin, begin + 12 + static_cast<std::ptrdiff_t>(d.target.size()));
      external(std::move(h), std::move(d.target), std::move(cname));
    }
  }
}

void Engine::finish(Held& h, std::vector<std::uint8_t>& response) {
  if (h.udp) fit_udp(h.q, response);
  h.reply(response);
}

void Engine::forward(std::shared_ptr<Held> h) {
  upstream_->forward(h->q, [self = weak_from_this(), h](std::span<const std::uint8_t> answer) {
    auto s = self.lock();
    if (!s) return;
    std::vector<std::uint8_t> out(answer.begin(), answer.end());
    if (out.empty()) {
      ++s->stats_.servfail;
      empty_response(h->q, rcode::kServFail, out);
    }
    s->finish(*h, out);
  });
}

void Engine::ask_cluster(std::shared_ptr<Held> h, std::string target) {
  auto answered = std::make_shared<bool>(false);
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, cluster_timeout_);
  timer->async_wait([self = weak_from_this(), h, answered](boost::system::error_code ec) {
    auto s = self.lock();
    if (ec || !s || *answered) return;
    *answered = true;
    ++s->stats_.servfail;
    std::vector<std::uint8_t> out;
    empty_response(h->q, rcode::kServFail, out);
    s->finish(*h, out);
  });
  const std::string name = to_presentation(target);
  cluster_->resolve(name, h->q.qtype,
                    [self = weak_from_this(), h, answered, timer, target](ClusterAnswer a) {
                      auto s = self.lock();
                      if (!s || *answered) return;
                      *answered = true;
                      timer->cancel();
                      std::vector<std::uint8_t> out;
                      cluster_response(h->q, a, target, *s->table_, out);
                      s->finish(*h, out);
                    });
}

void Engine::external(std::shared_ptr<Held> h, std::string target, std::string cname) {
  if (const Entry* e = table_->find(target)) {
    std::string chain = cname;
    std::uint16_t count = 1;
    if (const RrSet* set = e->find(h->q.qtype)) {
      chain += rebase(*set, target);
      count += set->count;
    }
    auto out = std::make_shared<std::vector<std::uint8_t>>();
    build_response(h->q, rcode::kNoError, true, chain, count, {}, 0, *out);
    // Never reply from inside handle(): the caller counts the query as in flight first.
    boost::asio::post(io_, [self = weak_from_this(), h, out] {
      if (auto s = self.lock()) s->finish(*h, *out);
    });
    return;
  }
  upstream_->query(target, h->q.qtype,
                   [self = weak_from_this(), h, cname](std::span<const std::uint8_t> answer) {
                     auto s = self.lock();
                     if (!s) return;
                     std::string chain = cname;
                     std::uint16_t count = 1;
                     std::uint8_t rc = rcode::kServFail;
                     ldns_pkt* pkt = nullptr;
                     if (!answer.empty() &&
                         ldns_wire2pkt(&pkt, answer.data(), answer.size()) == LDNS_STATUS_OK) {
                       rc = static_cast<std::uint8_t>(ldns_pkt_get_rcode(pkt));
                       const ldns_rr_list* rrs = ldns_pkt_answer(pkt);
                       for (std::size_t i = 0; i < ldns_rr_list_rr_count(rrs) && count < 100; ++i) {
                         std::uint8_t* wire = nullptr;
                         std::size_t size = 0;
                         if (ldns_rr2wire(&wire, ldns_rr_list_rr(rrs, i), LDNS_SECTION_ANSWER,
                                          &size) == LDNS_STATUS_OK) {
                           chain.append(reinterpret_cast<const char*>(wire), size);
                           ++count;
                         }
                         free(wire);
                       }
                     }
                     if (pkt) ldns_pkt_free(pkt);
                     std::vector<std::uint8_t> out;
                     build_response(h->q, rc, false, chain, count, {}, 0, out);
                     s->finish(*h, out);
                   });
}

}  // namespace lpk::dns::detail
