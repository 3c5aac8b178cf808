#pragma once
// DNS messages exchanged with the cluster's own nameserver (through the agent's
// dns.lpk.internal:53 service): the query lpk sends and the answer it turns into a ClusterAnswer
// for the stub. Pure functions over bytes; the answer is network input and never throws.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dns/cluster_resolver.hpp"

namespace lpk::dns {

/// A query for `name` (presentation form) / `qtype` with RD set, an EDNS0 OPT record and id
/// `id`, unframed. Empty when the name cannot be encoded (empty label, label over 63 bytes,
/// name over 255 bytes).
std::vector<std::uint8_t> make_cluster_query(std::uint16_t id, const std::string& name,
                                             std::uint16_t qtype);

/// Size of the question section of `message` (one question, uncompressed, after the 12-byte
/// header), or 0 when it does not parse.
std::size_t question_size(std::span<const std::uint8_t> message);

/// True when `answer` carries the same question as `query` (names compared case-insensitively):
/// a late answer to a query that timed out can arrive with an id that was reused since.
bool answers_question(std::span<const std::uint8_t> answer, std::span<const std::uint8_t> query);

/// Turns a DNS response into a ClusterAnswer: rcode plus the answer section's IN records, names
/// in presentation form and rdata uncompressed. Nullopt when the packet does not parse.
std::optional<ClusterAnswer> parse_cluster_answer(std::span<const std::uint8_t> packet);

}  // namespace lpk::dns
