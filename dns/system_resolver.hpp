#pragma once
// Pointing the machine's resolver at the stub, and back: `resolver install | uninstall |
// status`. Two modes:
//  - systemd-resolved: a dummy link (resolved refuses DNS settings on `lo`) carries the stub
//    as its DNS server and routes `~<zone>` plus the session's search domains to it;
//  - plain resolv.conf: the file is backed up, rewritten in place (it may be a bind mount)
//    to `nameserver <stub>` with the search domains prepended, and restored byte for byte.
// Every path and program is injectable so tests run on temporary files.

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <vector>

namespace lpk::dns {

struct ResolverConfig {
  std::string zone = "cluster.local";
  std::string ns = "default";  ///< session namespace: search `<ns>.svc.<zone> svc.<zone> <zone>`
  boost::asio::ip::address address = boost::asio::ip::make_address("127.77.0.53");
  std::uint16_t port = 53;    ///< plain resolv.conf can only name port 53
  std::string mode = "auto";  ///< auto, resolved or resolv.conf
  bool dry_run = false;
  /// Plain resolv.conf mode refuses an address where nothing answers DNS (the machine would be
  /// left without a resolver); --force writes it anyway.
  bool force = false;
  std::string resolv_conf = "/etc/resolv.conf";
  std::string backup;  ///< default `<resolv_conf>.lpk-backup`
  std::string link = "lpk0";
  std::string resolvectl = "resolvectl";
  std::string ip = "ip";
};

/// The resolv.conf the stub should forward to: the backup while installed (the machine's
/// original resolvers), else the live file.
std::string upstream_resolv_conf(const ResolverConfig& config);

/// True when something answers a DNS query (any answer, even an error) at address:port within
/// `timeout_ms`: a stub that serves there.
bool answers_dns(const boost::asio::ip::address& address, std::uint16_t port, int timeout_ms);

/// "resolved" or "resolv.conf": what `auto` picks on this machine.
std::string detect_mode(const ResolverConfig& config);

int install_resolver(const ResolverConfig& config, std::ostream& out, std::ostream& err);
int uninstall_resolver(const ResolverConfig& config, std::ostream& out, std::ostream& err);
int resolver_status(const ResolverConfig& config, std::ostream& out, std::ostream& err);

/// `args` = {"install"|"uninstall"|"status", flags...}; flags: --dry-run, --force, --zone Z,
/// --namespace NS, --address IP[:PORT], --mode auto|resolved|resolv.conf, --resolv-conf PATH,
/// --backup PATH, --link NAME, --resolvectl PROG, --ip PROG. Prints one line on a bad flag and
/// returns 2; otherwise 0 on success, 1 on failure (with one line on `err` naming the fix).
int run_resolver_command(std::span<const std::string> args, std::ostream& out, std::ostream& err);

}  // namespace lpk::dns
