// libFuzzer target for the stub's query path: parse, answer from the table (every action),
// fit to UDP, and the error responses; plus the cache's parser of upstream responses, which
// reads bytes the network sent too.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dns/detail/cache.hpp"
#include "dns/name_table.hpp"
#include "dns/resolver.hpp"

namespace {

const lpk::dns::NameTable& table() {
  static const auto t = [] {
    using boost::asio::ip::make_address;
    lpk::dns::TableSpec spec;
    spec.session_namespace = "dev";
    spec.namespaces = {"other"};
    lpk::dns::Service redis;
    redis.name = "redis";
    redis.ns = "dev";
    redis.address = make_address("127.77.0.12");
    redis.ports = {{"redis", 6379, "tcp"}};
    lpk::dns::Service web;
    web.name = "web";
    web.ns = "dev";
    web.headless = true;
    web.ports = {{"http", 80, "tcp"}};
    for (int i = 1; i < 50; ++i)
      web.endpoints.push_back({make_address("127.77.1." + std::to_string(i)), "", true});
    lpk::dns::Service ext;
    ext.name = "ext";
    ext.ns = "dev";
    ext.external_name = "db.example.org";
    spec.services = {redis, web, ext};
    return lpk::dns::NameTable::build(spec);
  }();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> packet(data, size);
  lpk::dns::Query q;
  std::vector<std::uint8_t> out;
  const auto status = lpk::dns::parse_query(packet, q);
  if (status != lpk::dns::ParseStatus::kOk) {
    lpk::dns::error_response(status, q, out);
  } else {
    lpk::dns::resolve(table(), q, out);
    if (!out.empty()) lpk::dns::fit_udp(q, out);
  }
  std::vector<std::uint16_t> offsets;
  lpk::dns::detail::Cache::cache_ttl(packet, &offsets);
  if (status == lpk::dns::ParseStatus::kOk) {
    // The same bytes as an upstream's answer to themselves: store, then serve from the cache.
    lpk::dns::detail::Cache cache([] { return std::chrono::steady_clock::time_point{}; }, 4);
    cache.store(q, packet);
    cache.lookup(q, out);
  }
  return 0;
}
