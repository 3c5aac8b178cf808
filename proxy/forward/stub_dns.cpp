#include "proxy/forward/stub_dns.hpp"

#include <boost/asio/io_context.hpp>
#include <map>

#include "dns/server.hpp"
#include "dns/system_resolver.hpp"
#include "dns/upstream.hpp"
#include "proxy/tunnel/listen.hpp"

namespace lpk::proxy {

dns::TableSpec table_for(const std::vector<NamedService>& services,
                         const StubDnsOptions& options) {
  dns::TableSpec spec;
  spec.zone = options.zone;
  spec.session_namespace = options.session_namespace;
  spec.namespaces.push_back(options.session_namespace);
  std::map<std::pair<std::string, std::string>, std::size_t> index;
  for (const auto& s : services) {
    auto dot = s.name.find('.');
    std::string name = s.name.substr(0, dot);
    std::string ns = dot == std::string::npos ? options.session_namespace : s.name.substr(dot + 1);
    auto key = std::make_pair(name, ns);
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, spec.services.size()).first;
      spec.services.push_back({name, ns, s.address, {}, false, {}, {}});
      spec.namespaces.push_back(ns);
    }
    for (auto port : s.ports) spec.services[it->second].ports.push_back({"", port, "tcp"});
  }
  return spec;
}

StubDns::StubDns(boost::asio::io_context& io, const StubDnsOptions& options,
                 const std::vector<NamedService>& services)
    : StubDns(io, options, table_for(services, options), nullptr) {}

StubDns::StubDns(boost::asio::io_context& io, const StubDnsOptions& options,
                 const dns::TableSpec& table, dns::ClusterResolver* cluster) {
  dns::UpstreamOptions upstream;
  upstream.resolv_conf = options.resolv_conf.empty()
                             ? dns::upstream_resolv_conf(dns::ResolverConfig{})
                             : options.resolv_conf;
  upstream.exclude = {options.listen};
  upstream_ = std::make_unique<dns::Upstream>(io, upstream);
  dns::ServerOptions server;
  server.address = options.listen.address();
  server.port = options.listen.port();
  server_ = std::make_unique<dns::Server>(io, server, dns::NameTable::build(table),
                                          upstream_.get(), cluster);
  server_->start();
}

tunnel::Result<void> StubDns::check_available(const boost::asio::ip::udp::endpoint& listen) {
  namespace asio = boost::asio;
  asio::io_context io(1);
  boost::system::error_code ec;
  asio::ip::udp::socket udp(io);
  udp.open(listen.protocol(), ec);
  if (!ec) udp.bind(listen, ec);
  auto tcp = tunnel::open_listener(io.get_executor(), {listen.address(), listen.port()});
  if (!ec && !tcp) ec = tcp.error().code;
  if (!ec) return {};
  return tunnel::Problem{ec, "cannot start the stub DNS on " +
                                 tunnel::endpoint_text({listen.address(), listen.port()}) +
                                 ": " + ec.message()};
}

void StubDns::set_table(const dns::TableSpec& table) {
  server_->set_table(dns::NameTable::build(table));
}

StubDns::~StubDns() = default;

boost::asio::ip::udp::endpoint StubDns::endpoint() const { return server_->local_endpoint(); }

void StubDns::stop() {
  server_->stop();
  upstream_->stop();
}

}  // namespace lpk::proxy
