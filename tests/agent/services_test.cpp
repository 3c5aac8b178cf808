// Reserved names: which targets are agent services, what dialling them gives, and the agent
// answering them over a real tunnel session instead of dialling.
#include "agent/services.hpp"
#include "proxy/tunnel/loopback_pair.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/agent.hpp"
#include "tests/agent/dnsmasq.hpp"
#include "tests/proxy/tunnel/test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::agent {
namespace {

using namespace lpk::tunnel::test;
using tunnel::OpenCode;
using tunnel::Target;

Target name(std::string host, std::uint16_t port) {
  return {Target::Kind::name, std::move(host), port};
}

TEST(IsServiceTarget, OnlyNamesInsideLpkInternal) {
  EXPECT_TRUE(is_service_target(name("env.lpk.internal", 1)));
  EXPECT_TRUE(is_service_target(name("DNS.LPK.Internal.", 53)));
  EXPECT_TRUE(is_service_target(name("other.lpk.internal", 80)));
  EXPECT_TRUE(is_service_target(name("lpk.internal", 80)));
  EXPECT_FALSE(is_service_target(name("notlpk.internal", 1)));
  EXPECT_FALSE(is_service_target(name("env.lpk.internal.example.com", 1)));
  EXPECT_FALSE(is_service_target({Target::Kind::ipv4, "127.0.0.1", 1}));
}

asio::awaitable<std::string> read_to_end(tcp::socket& s) {
  std::string out;
  std::array<char, 4096> b;
  while (true) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(b), kTuple);
    out.append(b.data(), n);
    if (ec) co_return out;
  }
}

TEST(DialService, UnknownNamesWrongPortsAndMissingNameserver) {
  asio::io_context io;
  lpk::test::TempDir dir;
  ServiceOptions options;
  options.dns.resolv_conf = dir.write("resolv.conf", "search svc.cluster.local\n");
  EXPECT_TRUE(run_task(io, [&]() -> asio::awaitable<void> {
    auto unknown = co_await dial_service(name("nope.lpk.internal", 1), options);
    EXPECT_EQ(unknown.code, OpenCode::name_not_found) << unknown.reason;
    auto port = co_await dial_service(name("env.lpk.internal", 80), options);
    EXPECT_EQ(port.code, OpenCode::refused);
    EXPECT_NE(port.reason.find("port 1"), std::string::npos) << port.reason;
    auto dns = co_await dial_service(name("dns.lpk.internal", 53), options);
    EXPECT_EQ(dns.code, OpenCode::unreachable);
    EXPECT_NE(dns.reason.find("no usable nameserver"), std::string::npos) << dns.reason;
    // run_task needs one real asynchronous step to see the task finish.
    co_await asio::post(io, asio::use_awaitable);
  }()));
}

TEST(SettledWalk, AFileThatVanishedMidWalkIsLookedForAgainBeforeItCountsAsGone) {
  // A kubelet's atomic-writer swap, as the walker can meet it: the first walk finds the file
  // missing (the old data directory was just removed), the next one finds the new file.
  auto present = [] {
    FileReport r;
    r.files.push_back({"/etc/demo/greeting", 0644, "hello"});
    return r;
  };
  auto missing = [] {
    FileReport r;
    r.skipped.push_back({"/etc/demo/greeting", kMissingReason});
    return r;
  };
  asio::io_context io;
  int walks = 0;
  EXPECT_TRUE(run_task(io, [&]() -> asio::awaitable<void> {
    auto swapped = co_await settled_walk([&] { return ++walks == 1 ? missing() : present(); },
                                         std::chrono::milliseconds(1), 3);
    EXPECT_EQ(walks, 2);
    EXPECT_EQ(swapped.files.size(), 1u);
    EXPECT_TRUE(swapped.skipped.empty());
    // Really gone (or a broken symlink for good): believed after the retries.
    walks = 0;
    auto gone = co_await settled_walk([&] { return ++walks, missing(); },
                                      std::chrono::milliseconds(1), 3);
    EXPECT_EQ(walks, 4);
    EXPECT_TRUE(walk_met_missing(gone));
    // Nothing missing: one walk.
    walks = 0;
    co_await settled_walk([&] { return ++walks, present(); }, std::chrono::milliseconds(1), 3);
    EXPECT_EQ(walks, 1);
  }()));
}

TEST(DialService, EnvSendsOneDocumentThenEnds) {
  asio::io_context io;
  lpk::test::TempDir dir;
  dir.write("app.yaml", "a: 1\n");
  ServiceOptions options;
  options.env.mounts = {dir.path()};
  options.env.container = "api";
  EXPECT_TRUE(run_task(io, [&]() -> asio::awaitable<void> {
    auto result = co_await dial_service(name("Env.Lpk.Internal", 1), options);
    CO_ASSERT_TRUE(result.code == OpenCode::ok && result.socket);
    auto text = co_await read_to_end(*result.socket);
    auto doc = nlohmann::json::parse(text);
    EXPECT_EQ(doc["container"], "api");
    EXPECT_TRUE(doc["env"].contains("PATH"));
    bool found = false;
    for (const auto& f : doc["files"]) found |= f["path"] == dir.path() + "/app.yaml";
    EXPECT_TRUE(found) << text.substr(0, 500);
  }()));
}

/// The agent end to end in-process: a proxy Session opens streams to the reserved names and
/// the agent answers them itself (no dial of "env.lpk.internal" through any resolver).
TEST(AgentServices, ServedThroughATunnel) {
  std::unique_ptr<test::Dnsmasq> dnsmasq;
  LPK_START_DNSMASQ(dnsmasq);
  asio::io_context io;
  AgentOptions options;
  options.tunnel_endpoint = {asio::ip::make_address("127.0.0.1"), 0};
  options.services.env.container = "api";
  options.services.dns.resolv_conf = dnsmasq->resolv_conf();
  Agent agent(io.get_executor(), options);
  std::vector<std::string> errors;
  agent.bind(errors);
  agent.start();
  EXPECT_TRUE(run_task(io, [&]() -> asio::awaitable<void> {
    tcp::socket link(io);
    co_await link.async_connect(agent.tunnel_endpoint(), asio::use_awaitable);
    tunnel::SessionOptions proxy_options;  // named: GCC 12 mishandles {} in co_await calls
    auto session = co_await tunnel::Session::establish(
        std::make_unique<tunnel::TcpLink>(std::move(link)), proxy_options, nullptr);
    CO_ASSERT_TRUE(session);
    asio::co_spawn(io, (*session)->run(), asio::detached);
    auto env_pair = tunnel::loopback_pair(io.get_executor());
    CO_ASSERT_TRUE(env_pair);
    (*session)->open_stream(std::move((*env_pair)[1]), name("env.lpk.internal", 1));
    auto doc = nlohmann::json::parse(co_await read_to_end((*env_pair)[0]));
    EXPECT_EQ(doc["container"], "api");

    auto dns_pair = tunnel::loopback_pair(io.get_executor());
    CO_ASSERT_TRUE(dns_pair);
    (*session)->open_stream(std::move((*dns_pair)[1]), name("dns.lpk.internal", 53));
    // api.demo.svc.cluster.local A, id 0x0A0B, framed.
    std::vector<std::uint8_t> q = {0, 44, 0x0A, 0x0B, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    for (std::string label : {"api", "demo", "svc", "cluster", "local"}) {
      q.push_back(std::uint8_t(label.size()));
      q.insert(q.end(), label.begin(), label.end());
    }
    q.insert(q.end(), {0, 0, 1, 0, 1});
    CO_ASSERT_EQ(q.size(), 46u);
    co_await asio::async_write((*dns_pair)[0], asio::buffer(q), asio::use_awaitable);
    std::array<std::uint8_t, 2> size{};
    co_await asio::async_read((*dns_pair)[0], asio::buffer(size), asio::use_awaitable);
    std::vector<std::uint8_t> answer((size[0] << 8) | size[1]);
    co_await asio::async_read((*dns_pair)[0], asio::buffer(answer), asio::use_awaitable);
    EXPECT_EQ(answer[0], 0x0A);
    EXPECT_EQ(answer[1], 0x0B);
    EXPECT_EQ(answer[3] & 0x0F, 0);
    EXPECT_EQ(std::vector<std::uint8_t>(answer.end() - 4, answer.end()),
              (std::vector<std::uint8_t>{10, 96, 0, 10}));
    (*session)->stop();
  }()));
  agent.stop();
}

}  // namespace
}  // namespace lpk::agent
