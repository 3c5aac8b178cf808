#pragma once
// The seam between the stub and the cluster's own DNS: names inside the cluster zone that the
// NameTable does not know (pods, services lpk does not track) are asked here. A later issue
// implements it over the tunnel (the agent asks the cluster's DNS); tests use a fake.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lpk::dns {

struct ClusterRecord {
  std::string name;  ///< owner, presentation form ("web-0.web.dev.svc.cluster.local.")
  std::uint16_t type = 0;
  std::uint32_t ttl = 0;
  std::vector<std::uint8_t> rdata;  ///< wire form, uncompressed
};

struct ClusterAnswer {
  std::uint8_t rcode = 0;  ///< 0 NOERROR, 3 NXDOMAIN, 2 SERVFAIL ...
  std::vector<ClusterRecord> records;
};

class ClusterResolver {
 public:
  using Callback = std::function<void(ClusterAnswer)>;
  virtual ~ClusterResolver() = default;

  /// Resolves `name` (absolute, lower case, inside the cluster zone) for `qtype`. `done` is
  /// called at most once, on the server's io thread. If it is not called within the server's
  /// cluster timeout the client gets SERVFAIL and a later call is ignored.
  virtual void resolve(const std::string& name, std::uint16_t qtype, Callback done) = 0;
};

}  // namespace lpk::dns
