#include "proxy/forward/service_map.hpp"

#include <algorithm>
#include <charconv>

namespace lpk::proxy {

namespace ip = boost::asio::ip;

namespace {

std::string single_quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::uint16_t parse_port(std::string_view text, std::string_view context, bool allow_zero) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535 ||
      (value == 0 && !allow_zero)) {
    throw std::invalid_argument("bad port " + single_quoted(text) + " in " +
                                single_quoted(context));
  }
  return std::uint16_t(value);
}

// Splits "host:port", "[v6]:port".
std::pair<std::string, std::string_view> split_host_port(std::string_view text,
                                                         std::string_view context) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    throw std::invalid_argument("expected HOST:PORT, got " + single_quoted(text) + " in " +
                                single_quoted(context));
  }
  std::string host(text.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, text.substr(colon + 1)};
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= tunnel::kMaxHostNameSize &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
         });
}

}  // namespace

tunnel::Target parse_target(std::string_view host_port) {
  auto [host, port] = split_host_port(host_port, host_port);
  tunnel::Target t;
  t.port = parse_port(port, host_port, false);
  boost::system::error_code ec;
  auto address = ip::make_address(host, ec);
  if (!ec) {
    t.kind = address.is_v4() ? tunnel::Target::Kind::ipv4 : tunnel::Target::Kind::ipv6;
    t.host = address.to_string();
  } else if (valid_name(host)) {
    t.kind = tunnel::Target::Kind::name;
    t.host = host;
  } else {
    throw std::invalid_argument("bad target host " + single_quoted(host) + " in " +
                                single_quoted(host_port));
  }
  return t;
}

boost::asio::ip::tcp::endpoint parse_listen_endpoint(std::string_view addr_port) {
  auto [host, port] = split_host_port(addr_port, addr_port);
  boost::system::error_code ec;
  auto address = ip::make_address(host, ec);
  if (ec) {
    throw std::invalid_argument("expected ADDR:PORT with an IP address, got " +
                                single_quoted(addr_port));
  }
  return {address, parse_port(port, addr_port, true)};
}

Mapping parse_mapping(std::string_view spec) {
  auto eq = spec.find('=');
  if (eq == std::string_view::npos) {
    throw std::invalid_argument(
        "expected NAME:PORT=HOST:PORT[/udp] or ADDR:PORT=HOST:PORT[/udp], got " +
        single_quoted(spec));
  }
  Mapping m;
  auto [left_host, left_port] = split_host_port(spec.substr(0, eq), spec);
  auto right = spec.substr(eq + 1);
  const bool udp = right.ends_with(kUdpSuffix);
  if (udp) right.remove_suffix(kUdpSuffix.size());
  m.target = parse_target(right);
  m.target.datagram = udp;
  boost::system::error_code ec;
  auto address = ip::make_address(left_host, ec);
  if (!ec) {
    m.address = address;
    m.port = parse_port(left_port, spec, true);
  } else if (valid_name(left_host)) {
    m.name = left_host;
    m.port = parse_port(left_port, spec, false);
  } else {
    throw std::invalid_argument("bad service name " + single_quoted(left_host) + " in " +
                                single_quoted(spec));
  }
  return m;
}

std::vector<Mapping> parse_mapping_file(std::istream& in, std::string_view path) {
  std::vector<Mapping> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    auto last = line.find_last_not_of(" \t\r");
    try {
      out.push_back(parse_mapping(std::string_view(line).substr(first, last - first + 1)));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(path) + ":" + std::to_string(number) + ": " +
                                  e.what());
    }
  }
  return out;
}

void InboundRoutes::add(std::string_view spec) {
  auto colon = spec.find(':');
  if (colon == std::string_view::npos) {
    any_port = parse_port(spec, spec, false);
    return;
  }
  auto local = parse_port(spec.substr(0, colon), spec, false);
  auto remote = parse_port(spec.substr(colon + 1), spec, false);
  by_remote[remote] = local;
}

std::optional<std::uint16_t> InboundRoutes::local_port_for(std::uint16_t remote) const {
  if (auto it = by_remote.find(remote); it != by_remote.end()) return it->second;
  return any_port;
}

}  // namespace lpk::proxy
