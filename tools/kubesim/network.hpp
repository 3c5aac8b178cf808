#pragma once
// The addresses of one kubesim cluster: the pod range and the node's address on it, the
// service range with the ClusterIPs of kubernetes and kube-dns. IPv4 by default, or single-stack
// IPv6 (`up --ip-family ipv6`), whose ranges sit in a ULA prefix (RFC 4193) made from the
// instance tag, as a real cluster's would be its own: two kubesims never hand out the same
// address. Pure: nothing here touches the system.

#include <cstdint>
#include <optional>
#include <string>

namespace lpk::kubesim {

enum class IpFamily { ipv4, ipv6 };

class ClusterNetwork {
 public:
  /// Pods 10.244.0.0/16 (the node 10.244.0.1), services 10.96.0.0/16.
  static ClusterNetwork ipv4();
  /// For tag "1a2b3c4d": pods fd1a:2b3c:4d00:244::/64 (the node ::1 of it), services
  /// fd1a:2b3c:4d00:96::/112. tag is instance_tag()'s 8 hex digits.
  static ClusterNetwork ipv6(const std::string& instance_tag);
  /// "ipv4" or "ipv6" (the --ip-family values); nullopt for anything else.
  static std::optional<IpFamily> parse_family(const std::string& text);

  IpFamily family() const { return family_; }
  /// "IPv4" or "IPv6", as Service spec.ipFamilies and EndpointSlice addressType spell them.
  const char* family_name() const { return family_ == IpFamily::ipv4 ? "IPv4" : "IPv6"; }
  /// The family name of a textual address, "" when it is not one.
  static std::string family_of(const std::string& address);

  /// The node's address on the pod network: the pods' gateway and their hostIP.
  std::string node_ip() const { return pod_ip(1).value_or(""); }
  int pod_prefix_length() const { return family_ == IpFamily::ipv4 ? 16 : 64; }
  /// Host offsets of the pod range that pod_ip() takes (1 is the node).
  std::uint32_t pod_hosts() const { return 65534; }
  /// The address at host offset n of the pod range; nullopt where IPv4 has a .0 or .255.
  std::optional<std::string> pod_ip(std::uint32_t n) const;

  /// The service range in CIDR form (routed to the node's lo).
  std::string service_cidr() const;
  /// The address at offset n of the service range; nullopt where IPv4 has a .0 or .255.
  std::optional<std::string> service_ip(std::uint32_t n) const;
  /// The first address of the range, as the apiserver reserves it for default/kubernetes.
  std::string kubernetes_ip() const { return service_ip(1).value_or(""); }
  /// The tenth, as kubeadm's clusterDNS is.
  std::string dns_ip() const { return service_ip(10).value_or(""); }

 private:
  IpFamily family_ = IpFamily::ipv4;
  std::string prefix_;  // IPv6 only: the first 5 bytes after 0xfd, as 10 hex digits
};

}  // namespace lpk::kubesim
