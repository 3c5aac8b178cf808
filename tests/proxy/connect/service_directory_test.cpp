// The service directory with a real Forwarder (listening sockets; its OpenStream records what
// reaches it) and AddressPool: listeners and the DNS table follow every upsert, removal and
// relist; a port change rebinds; ExternalName services are names only; a port that cannot be
// bound because another program holds it moves the service to another address.
#include "proxy/connect/service_directory.hpp"

#include <gtest/gtest.h>

#include "dns/resolver.hpp"
#include "tests/dns/test_util.hpp"
#include "tests/proxy/test_pool.hpp"
#include "tests/proxy/tunnel/test_util.hpp"

namespace lpk::proxy {
namespace {

using namespace lpk::tunnel::test;
using nlohmann::json;
using test::process_pool;
using tunnel::Target;

json service(const std::string& ns, const std::string& name, json ports) {
  return {{"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"type", "ClusterIP"}, {"ports", std::move(ports)}}}};
}

json tcp_port(const std::string& name, int port) {
  return {{"name", name}, {"port", port}, {"protocol", "TCP"}};
}

class ServiceDirectoryTest : public ::testing::Test {
 protected:
  ServiceDirectoryTest() {
    directory_.on_change = [this] { ++changes_; };
    forwarder_.start();
  }
  ~ServiceDirectoryTest() override {
    forwarder_.stop();
    io_.restart();
    io_.poll();  // the accept loops end on operation_aborted
  }

  /// The address the directory gives `name.ns` (the pool is deterministic for the first name).
  asio::ip::address address_of(const std::string& key) {
    for (const auto& s : directory_.describe()) {
      if (s["namespace"].get<std::string>() + "/" + s["name"].get<std::string>() == key) {
        return asio::ip::make_address(s["address"].get<std::string>());
      }
    }
    ADD_FAILURE() << key << " is not in the directory";
    return {};
  }

  /// Connects to `endpoint` and returns the target the forwarder handed on, or nullopt when
  /// the connection was refused.
  std::optional<Target> connect(const tcp::endpoint& endpoint) {
    std::optional<Target> got;
    const auto before = opened_.size();
    io_.restart();  // the last run_task stopped it
    EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
      tcp::socket s(io_);
      auto [ec] = co_await s.async_connect(endpoint, kTuple);
      if (ec) {
        EXPECT_EQ(ec, asio::error::connection_refused) << ec.message();
        co_return;
      }
      CO_ASSERT_TRUE(co_await eventually([&] { return opened_.size() > before; }));
      got = opened_.back();
    }()));
    return got;
  }

  /// The records answering `name`/`type` from the directory's table, as presentation lines.
  std::vector<std::string> ask(const std::string& name, ldns_rr_type type,
                               dns::Action expected = dns::Action::kRespond) {
    auto table = dns::NameTable::build(directory_.table());
    auto packet = dns::test::make_query(name, type);
    dns::Query q;
    EXPECT_EQ(dns::parse_query(packet, q), dns::ParseStatus::kOk);
    std::vector<std::uint8_t> out;
    auto decision = dns::resolve(*table, q, out);
    EXPECT_EQ(decision.action, expected) << name;
    if (out.empty()) return {};
    return dns::test::Response(out).answer_strings();
  }

  asio::io_context io_;
  std::vector<Target> opened_;
  Forwarder forwarder_{io_.get_executor(),
                       [this](tcp::socket, Target t) { opened_.push_back(std::move(t)); }};
  AddressPool pool_{process_pool()};
  ServiceDirectory directory_{forwarder_, pool_, "dev", "cluster.local"};
  int changes_ = 0;
};

TEST_F(ServiceDirectoryTest, AServiceGetsAnAddressAListenerPerTcpPortAndItsNames) {
  auto api =
      service("dev", "api",
              {tcp_port("http", 18080), {{"name", "dns"}, {"port", 18053}, {"protocol", "UDP"}}});
  directory_.upsert(api);
  EXPECT_EQ(changes_, 1);
  const auto address = address_of("dev/api");
  EXPECT_TRUE(process_pool().hosts().find(address.to_v4()) != process_pool().hosts().end());
  auto described = directory_.describe();
  ASSERT_EQ(described.size(), 1u);
  EXPECT_EQ(described[0]["ports"], json::array({18080}));  // UDP cannot ride the tunnel
  EXPECT_EQ(described[0]["problems"], json::array());

  auto target = connect({address, 18080});
  ASSERT_TRUE(target);
  EXPECT_EQ(target->kind, Target::Kind::name);
  EXPECT_EQ(target->host, "api.dev.svc.cluster.local.");
  EXPECT_EQ(target->port, 18080);

  auto spec = directory_.table();
  EXPECT_EQ(spec.session_namespace, "dev");
  ASSERT_EQ(spec.services.size(), 1u);
  EXPECT_EQ(spec.services[0].address, address);
  ASSERT_EQ(spec.services[0].ports.size(), 2u);
  EXPECT_EQ(spec.services[0].ports[1].protocol, "udp");
  EXPECT_EQ(
      ask("api.dev.svc.cluster.local.", LDNS_RR_TYPE_A),
      std::vector<std::string>{"api.dev.svc.cluster.local.\t5\tIN\tA\t" + address.to_string()});
}

TEST_F(ServiceDirectoryTest, RemoveClosesTheListenersAndDropsTheNames) {
  directory_.upsert(service("dev", "api", {tcp_port("http", 18080)}));
  const auto address = address_of("dev/api");
  directory_.remove(service("dev", "api", json::array()));
  EXPECT_EQ(changes_, 2);
  EXPECT_TRUE(directory_.describe().empty());
  EXPECT_FALSE(connect({address, 18080})) << "still listening";
  EXPECT_TRUE(ask("api.dev.svc.cluster.local.", LDNS_RR_TYPE_A, dns::Action::kAskCluster).empty());
  directory_.remove(service("dev", "api", json::array()));  // unknown: nothing happens
  EXPECT_EQ(changes_, 2);
}

TEST_F(ServiceDirectoryTest, APortChangeRebindsOnTheSameAddress) {
  directory_.upsert(service("dev", "api", {tcp_port("http", 18080)}));
  const auto address = address_of("dev/api");
  directory_.upsert(service("dev", "api", {tcp_port("http", 18081)}));
  EXPECT_EQ(address_of("dev/api"), address);
  EXPECT_FALSE(connect({address, 18080})) << "the old port still listens";
  auto target = connect({address, 18081});
  ASSERT_TRUE(target);
  EXPECT_EQ(target->port, 18081);
  EXPECT_EQ(directory_.describe()[0]["ports"], json::array({18081}));

  // A change that is not about ports (a label) keeps the listener and updates the record.
  auto labelled = service("dev", "api", {tcp_port("http", 18081)});
  labelled["metadata"]["labels"] = {{"tier", "web"}};
  directory_.upsert(labelled);
  EXPECT_EQ(changes_, 3);
  EXPECT_TRUE(connect({address, 18081}));
}

TEST_F(ServiceDirectoryTest, ExternalNameIsACnameWithoutAListener) {
  auto ext = service("dev", "db", {tcp_port("pg", 15432)});
  ext["spec"] = {{"type", "ExternalName"},
                 {"externalName", "db.example.org"},
                 {"ports", {tcp_port("pg", 15432)}}};
  directory_.upsert(ext);
  auto described = directory_.describe();
  ASSERT_EQ(described.size(), 1u);
  EXPECT_EQ(described[0]["ports"], json::array());
  EXPECT_FALSE(connect({address_of("dev/db"), 15432}));
  auto spec = directory_.table();
  ASSERT_EQ(spec.services.size(), 1u);
  EXPECT_EQ(spec.services[0].external_name, "db.example.org");
  EXPECT_FALSE(spec.services[0].address);
  EXPECT_EQ(ask("db.dev.svc.cluster.local.", LDNS_RR_TYPE_A, dns::Action::kExternal),
            std::vector<std::string>{"db.dev.svc.cluster.local.\t5\tIN\tCNAME\tdb.example.org."});
  EXPECT_TRUE(directory_.linked_services().empty());

  // Turned into a ClusterIP service: now it listens.
  directory_.upsert(service("dev", "db", {tcp_port("pg", 15432)}));
  EXPECT_TRUE(connect({address_of("dev/db"), 15432}));
  // And back: the listener goes.
  directory_.upsert(ext);
  EXPECT_FALSE(connect({address_of("dev/db"), 15432}));
}

TEST_F(ServiceDirectoryTest, AnAddressHeldByAnotherProgramMovesTheServiceAndItsName) {
  // The pool gives the first name its preferred address: another program holds one of its
  // ports there. The name must not lead to that program: the service moves, whole.
  const auto held = AddressPool(process_pool()).allocate("api.dev").value();
  tcp::acceptor holder(io_, tcp::endpoint(held, 0));
  const auto taken = holder.local_endpoint().port();
  ::testing::internal::CaptureStderr();
  directory_.upsert(service("dev", "api", {tcp_port("http", 18080), tcp_port("busy", taken)}));
  const auto said = ::testing::internal::GetCapturedStderr();
  const auto moved = address_of("dev/api");
  EXPECT_NE(moved, held);
  auto described = directory_.describe();
  ASSERT_EQ(described.size(), 1u);
  EXPECT_EQ(described[0]["ports"], json::array({18080, taken}));
  EXPECT_EQ(described[0]["problems"], json::array()) << described[0];
  EXPECT_EQ(said, "lpk-proxy: service dev/api: " + held.to_string() +
                      " is held by another program; it moves to " + moved.to_string() + "\n");
  EXPECT_TRUE(connect({moved, taken}));
  EXPECT_TRUE(connect({moved, 18080}));
  EXPECT_FALSE(connect({held, 18080})) << "nothing of the service is left on the held address";
  auto answers = ask("api.dev.svc.cluster.local.", LDNS_RR_TYPE_A);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].substr(answers[0].rfind('\t') + 1), moved.to_string()) << answers[0];
}

TEST_F(ServiceDirectoryTest, ReplaceNamespaceDropsWhatTheRelistLacksAndLeavesOtherNamespaces) {
  directory_.upsert(service("dev", "a", {tcp_port("", 18001)}));
  directory_.upsert(service("dev", "b", {tcp_port("", 18002)}));
  directory_.upsert(service("other", "x", {tcp_port("", 18003)}));
  const auto a = address_of("dev/a"), b = address_of("dev/b"), x = address_of("other/x");
  changes_ = 0;
  directory_.replace_namespace("dev", json::array({service("dev", "b", {tcp_port("", 18002)}),
                                                   service("dev", "c", {tcp_port("", 18004)})}));
  EXPECT_GE(changes_, 1);
  std::vector<std::string> keys;
  for (const auto& s : directory_.describe()) {
    keys.push_back(s["namespace"].get<std::string>() + "/" + s["name"].get<std::string>());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"dev/b", "dev/c", "other/x"}));
  EXPECT_FALSE(connect({a, 18001}));
  EXPECT_TRUE(connect({b, 18002}));
  EXPECT_TRUE(connect({address_of("dev/c"), 18004}));
  EXPECT_TRUE(connect({x, 18003}));
  // An empty relist of a namespace lpk had not seen yet still makes it known to the table.
  directory_.replace_namespace("empty", json::array());
  auto namespaces = directory_.table().namespaces;
  EXPECT_NE(std::find(namespaces.begin(), namespaces.end(), "empty"), namespaces.end());
  EXPECT_EQ(ask("a.dev.svc.cluster.local.", LDNS_RR_TYPE_A, dns::Action::kAskCluster).size(), 0u);
  EXPECT_EQ(ask("x.other.svc.cluster.local.", LDNS_RR_TYPE_A).size(), 1u);
}

TEST_F(ServiceDirectoryTest, LinkedServicesAreTheSessionNamespacesOnly) {
  directory_.upsert(
      service("dev", "redis-main",
              {tcp_port("", 16379), {{"name", "metrics"}, {"port", 19121}, {"protocol", "UDP"}}}));
  directory_.upsert(service("other", "api", {tcp_port("http", 18080)}));
  auto ext = service("dev", "db", json::array());
  ext["spec"] = {{"type", "ExternalName"}, {"externalName", "db.example.org"}};
  directory_.upsert(ext);
  auto linked = directory_.linked_services();
  ASSERT_EQ(linked.size(), 1u);
  EXPECT_EQ(linked[0].name, "redis-main");
  EXPECT_EQ(linked[0].address, address_of("dev/redis-main"));
  ASSERT_EQ(linked[0].ports.size(), 2u);
  EXPECT_EQ(linked[0].ports[0].port, 16379);
  EXPECT_EQ(linked[0].ports[0].protocol, "TCP");
  EXPECT_EQ(linked[0].ports[1].name, "metrics");
  EXPECT_EQ(linked[0].ports[1].protocol, "UDP");
}

}  // namespace
}  // namespace lpk::proxy
