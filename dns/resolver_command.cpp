// `resolver install|uninstall|status [flags]`, shared by lpk-proxy and lpk-dns.
#include <algorithm>
#include <map>

#include "dns/system_resolver.hpp"

namespace lpk::dns {
namespace {

bool parse_address(const std::string& text, ResolverConfig& c) {
  std::string host = text;
  std::string port;
  if (auto close = text.find(']'); text.starts_with("[") && close != std::string::npos) {
    host = text.substr(1, close - 1);
    if (close + 1 < text.size() && text[close + 1] == ':') port = text.substr(close + 2);
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    host = text.substr(0, text.find(':'));
    port = text.substr(text.find(':') + 1);
  }
  boost::system::error_code ec;
  c.address = boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  if (!port.empty()) {
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos)
      return false;
    const int p = std::stoi(port);
    if (p <= 0 || p > 65535) return false;
    c.port = static_cast<std::uint16_t>(p);
  }
  return true;
}

}  // namespace

int run_resolver_command(std::span<const std::string> args, std::ostream& out, std::ostream& err) {
  const std::string usage =
      "usage: resolver install|uninstall|status [--dry-run] [--force] [--zone Z] "
      "[--namespace NS] [--address IP[:PORT]] [--mode auto|resolved|"
      "resolv.conf] [--resolv-conf PATH] [--backup PATH]";
  if (args.empty()) {
    err << usage << "\n";
    return 2;
  }
  ResolverConfig c;
  const std::map<std::string, std::string*> strings = {{"--zone", &c.zone},
                                                       {"--namespace", &c.ns},
                                                       {"--mode", &c.mode},
                                                       {"--resolv-conf", &c.resolv_conf},
                                                       {"--backup", &c.backup},
                                                       {"--link", &c.link},
                                                       {"--resolvectl", &c.resolvectl},
                                                       {"--ip", &c.ip}};
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--dry-run") {
      c.dry_run = true;
      continue;
    }
    if (flag == "--force") {
      c.force = true;
      continue;
    }
    if (i + 1 >= args.size() || (!strings.count(flag) && flag != "--address")) {
      err << "resolver: unknown flag or missing value '" << flag << "'; " << usage << "\n";
      return 2;
    }
    const std::string& value = args[++i];
    if (flag == "--address") {
      if (!parse_address(value, c)) {
        err << "resolver: --address wants IP or IP:PORT, got '" << value << "'\n";
        return 2;
      }
    } else {
      *strings.at(flag) = value;
    }
  }
  if (c.mode != "auto" && c.mode != "resolved" && c.mode != "resolv.conf") {
    err << "resolver: --mode must be auto, resolved or resolv.conf, got '" << c.mode << "'\n";
    return 2;
  }
  if (args[0] == "install") return install_resolver(c, out, err);
  if (args[0] == "uninstall") return uninstall_resolver(c, out, err);
  if (args[0] == "status") return resolver_status(c, out, err);
  err << "resolver: unknown command '" << args[0] << "'; " << usage << "\n";
  return 2;
}

}  // namespace lpk::dns
