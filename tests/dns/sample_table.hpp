#pragma once
// The name table most dns tests serve (namespace dev, zone cluster.local).

#include "dns/name_table.hpp"

namespace lpk::dns::test {

inline TableSpec sample_spec() {
  using boost::asio::ip::make_address;
  TableSpec spec;
  spec.zone = "cluster.local";
  spec.session_namespace = "dev";
  spec.namespaces = {"dev", "other"};
  Service redis{.name = "redis",
                .ns = "dev",
                .address = make_address("127.77.0.12"),
                .ports = {{"redis", 6379, "TCP"}, {"", 26379, "tcp"}}};
  Service api{.name = "api",
              .ns = "other",
              .address = make_address("127.77.0.13"),
              .ports = {{"http", 80, "tcp"}, {"dns", 53, "UDP"}}};
  Service web{.name = "web",
              .ns = "dev",
              .ports = {{"http", 8080, "tcp"}},
              .headless = true,
              .endpoints = {{make_address("127.77.1.1"), "web-0", true},
                            {make_address("127.77.1.2"), "web-1", true},
                            {make_address("127.77.1.3"), "", false},
                            {make_address("127.77.1.4"), "", true}}};
  Service empty{.name = "empty", .ns = "dev", .headless = true};
  Service ext{.name = "ext", .ns = "dev", .external_name = "db.example.org"};
  Service alias{.name = "alias", .ns = "dev", .external_name = "redis.dev.svc.cluster.local"};
  // Big answers (about 1.6 kB), for tests that must fill socket buffers quickly.
  Service many{.name = "many", .ns = "dev", .headless = true};
  for (int i = 1; i <= 100; ++i) {
    many.endpoints.push_back({make_address("127.79.0." + std::to_string(i)), "", true});
  }
  spec.services = {redis, api, web, empty, ext, alias, many};
  return spec;
}

}  // namespace lpk::dns::test
