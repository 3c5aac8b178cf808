#pragma once
// The answer logic, as pure functions: bytes of a query and a NameTable in, bytes of a response
// (or the decision to forward / ask the cluster) out. No I/O, no logging, no allocation beyond
// the caller's reusable buffers, so the UDP hot path and the fuzz target share it.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dns/name_table.hpp"

namespace lpk::dns {

namespace rcode {
constexpr std::uint8_t kNoError = 0, kFormErr = 1, kServFail = 2, kNxDomain = 3, kNotImp = 4,
                       kRefused = 5;
}  // namespace rcode

/// A client query as parsed by parse_query; `packet` and offsets point into the caller's buffer.
struct Query {
  std::span<const std::uint8_t> packet;
  std::uint16_t id = 0;
  std::uint16_t flags = 0;  ///< second header word (QR, opcode, AA, TC, RD, RA, AD, CD)
  std::string name;         ///< lower-cased wire name, reused between queries
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  std::size_t question_end = 0;  ///< offset just past the question; 0 if unreadable
  bool edns = false;
  bool dnssec_ok = false;
  std::uint16_t udp_size = 512;  ///< what the client takes over UDP
};

enum class ParseStatus { kOk, kDrop, kFormErr, kNotImp, kBadVers };

/// Parses a query. kDrop: not even a query header (or a response); the others name the error
/// response to send.
ParseStatus parse_query(std::span<const std::uint8_t> packet, Query& q);

/// Response to a query that did not parse (FORMERR, NOTIMP, BADVERS). False: drop it silently.
bool error_response(ParseStatus status, const Query& q, std::vector<std::uint8_t>& out);

enum class Action {
  kRespond,     ///< `out` holds the response
  kForward,     ///< not ours: send to the upstream resolvers
  kAskCluster,  ///< in the cluster zone but not in the table: ask the ClusterResolver for `target`
  kExternal,    ///< ExternalName: `out` holds the CNAME response; resolve `target` and append
};

struct Decision {
  Action action = Action::kRespond;
  std::string target;  ///< lower-cased wire name for kAskCluster and kExternal
};

/// Decides how to answer `q` from `table`; fills `out` for kRespond and kExternal.
Decision resolve(const NameTable& table, const Query& q, std::vector<std::uint8_t>& out);

/// Writes a response to `q`: header (id, opcode, RD and CD copied; QR, RA set; AA if
/// `authoritative`), the question as the client spelled it, then the given sections, then an
/// OPT record when the query had one.
void build_response(const Query& q, std::uint8_t rcode, bool authoritative,
                    std::string_view answers, std::uint16_t ancount, std::string_view authority,
                    std::uint16_t nscount, std::vector<std::uint8_t>& out);

/// Response with no records (SERVFAIL, REFUSED, ...).
void empty_response(const Query& q, std::uint8_t rcode, std::vector<std::uint8_t>& out);

/// If `response` is bigger than the client takes over UDP, cuts it to header + question with
/// TC set (plus OPT if the client sent one), so the client retries over TCP.
void fit_udp(const Query& q, std::vector<std::uint8_t>& response);

}  // namespace lpk::dns
