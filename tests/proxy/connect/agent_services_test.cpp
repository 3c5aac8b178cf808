// The proxy's client of the agent services against a real lpk::agent::Agent reached through
// a TunnelClient (real sessions over loopback), with a real dnsmasq as the cluster's DNS.
#include "proxy/connect/agent_services.hpp"

#include "proxy/connect/file_sync.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/agent.hpp"
#include "agent/dns_forwarder.hpp"
#include "agent/services.hpp"
#include "proxy/tunnel/client.hpp"
#include "tests/agent/dnsmasq.hpp"
#include "tests/proxy/tunnel/test_util.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

using namespace lpk::tunnel::test;
using tunnel::Target;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

/// An in-process lpk-agent and a TunnelClient to it; `open` is the proxy's way in.
class AgentFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    LPK_START_DNSMASQ(dnsmasq_);
    const auto config = dir_.path() + "/config";
    const auto data = config + "/..2024_05_01_10_00_00.1";
    std::filesystem::create_directories(data);
    std::ofstream(data + "/app.yaml") << "greeting: hello\n";
    std::filesystem::create_directory_symlink("..2024_05_01_10_00_00.1", config + "/..data");
    std::filesystem::create_symlink("..data/app.yaml", config + "/app.yaml");
    std::ofstream(dir_.path() + "/big") << std::string(5000, 'x');
    agent::AgentOptions options;
    options.tunnel_endpoint = {asio::ip::make_address("127.0.0.1"), 0};
    options.services.env.mounts = {config, dir_.path() + "/big"};
    options.services.env.limits.per_file = 4096;
    options.services.env.container = "api";
    options.services.env.files_poll = 100ms;
    options.services.dns.resolv_conf = dnsmasq_->resolv_conf();
    agent_ = std::make_unique<agent::Agent>(io_.get_executor(), options);
    std::vector<std::string> errors;
    agent_->bind(errors);
    agent_->start();
    const auto port = agent_->tunnel_endpoint().port();
    client_ = std::make_shared<tunnel::TunnelClient>(io_.get_executor(),
                                             Target{Target::Kind::ipv4, "127.0.0.1", port},
                                             tunnel::SessionOptions{}, nullptr);
    client_->start();
    open_ = [this](tcp::socket s, Target t) { client_->open(std::move(s), std::move(t)); };
  }
  void TearDown() override {
    if (client_) client_->stop();
    if (agent_) agent_->stop();
    // Let the stopped sessions and streams finish before their objects go away.
    io_.restart();
    io_.run_for(2s);
  }

  lpk::test::TempDir dir_;
  std::unique_ptr<agent::test::Dnsmasq> dnsmasq_;
  asio::io_context io_;
  std::unique_ptr<agent::Agent> agent_;
  std::shared_ptr<tunnel::TunnelClient> client_;
  OpenStream open_;
};

TEST_F(AgentFixture, FetchEnvironmentThroughTheTunnel) {
  ::setenv("LPK_TEST_SECRET", "from the container", 1);
  ::setenv("POD_NAME", "api-7d9c-x2", 1);
  EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
    auto env = co_await fetch_environment(open_);
    CO_ASSERT_TRUE(env.has_value());
    EXPECT_EQ(env->env.at("LPK_TEST_SECRET"), "from the container");
    EXPECT_EQ(env->container, "api");
    EXPECT_EQ(env->pod_name, "api-7d9c-x2");
    CO_ASSERT_EQ(env->files.size(), 1u);
    EXPECT_EQ(env->files[0].path, dir_.path() + "/config/app.yaml");
    EXPECT_EQ(env->files[0].bytes, "greeting: hello\n");
    EXPECT_EQ(env->files[0].mode & 0777, 0644u);
    CO_ASSERT_EQ(env->skipped.size(), 1u);
    EXPECT_EQ(env->skipped[0].path, dir_.path() + "/big");
    EXPECT_EQ(env->skipped[0].reason, "larger than 4096 bytes");
  }()));
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The kubelet's update of a configMap volume: a new timestamped directory, ..data swapped to it
// by rename, a link for the new key. The mirror follows through the agent's files service.
TEST_F(AgentFixture, FollowFilesMirrorsAnAtomicWriterUpdate) {
  lpk::test::TempDir local;
  FileMirror mirror(local.path() + "/files");
  const auto config = dir_.path() + "/config";
  std::vector<MirrorChange> changes;
  EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
    Event changed(io_.get_executor());
    auto on_change = [&](const MirrorChange& c) {
      changes.push_back(c);
      changed.set();
    };
    FollowEnd end;
    Event ended(io_.get_executor());
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
      end = co_await follow_files(open_, mirror, on_change);
      ended.set();
    }, asio::detached);
    CO_ASSERT_TRUE(co_await changed.wait(10s));  // the full set
    EXPECT_EQ(slurp(mirror.root().string() + config + "/app.yaml"), "greeting: hello\n");

    changed.reset();
    const auto data = config + "/..2024_05_01_10_05_00.2";
    std::filesystem::create_directories(data);
    std::ofstream(data + "/app.yaml") << "greeting: changed\n";
    std::ofstream(data + "/extra.yaml") << "new: key\n";
    std::filesystem::create_directory_symlink("..2024_05_01_10_05_00.2", config + "/..data_tmp");
    std::filesystem::rename(config + "/..data_tmp", config + "/..data");
    std::filesystem::create_symlink("..data/extra.yaml", config + "/extra.yaml");
    CO_ASSERT_TRUE(co_await changed.wait(10s));
    // One poll may see the swap before the new link: wait for both files.
    for (int i = 0; i < 50 && mirror.size() < 2; ++i) {
      changed.reset();
      co_await changed.wait(200ms);
    }
    EXPECT_EQ(slurp(mirror.root().string() + config + "/app.yaml"), "greeting: changed\n");
    EXPECT_EQ(slurp(mirror.root().string() + config + "/extra.yaml"), "new: key\n");

    changed.reset();
    std::filesystem::remove(config + "/extra.yaml");
    CO_ASSERT_TRUE(co_await changed.wait(10s));
    EXPECT_FALSE(std::filesystem::exists(mirror.root().string() + config + "/extra.yaml"));
    EXPECT_EQ(changes.back().removed, std::vector<std::string>{config + "/extra.yaml"});

    client_->stop();
    CO_ASSERT_TRUE(co_await ended.wait(10s));
    EXPECT_GE(end.messages, 3u);
  }()));
}

std::string rdata_text(const dns::ClusterRecord& r) {
  return std::string(r.rdata.begin(), r.rdata.end());
}

TEST_F(AgentFixture, ResolverAnswersThroughOneStream) {
  auto resolver = std::make_shared<AgentDnsResolver>(io_.get_executor(), open_);
  EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
    std::map<std::string, dns::ClusterAnswer> answers;
    Event all(io_.get_executor());
    const std::vector<std::pair<std::string, std::uint16_t>> asks = {
        {"api.demo.svc.cluster.local", 1},
        {"alias.demo.svc.cluster.local", 1},
        {"_http._tcp.web.demo.svc.cluster.local", 33},
        {"nope.demo.svc.cluster.local", 1},
        {"big.test", 16}};
    for (const auto& [name, type] : asks) {
      resolver->resolve(name, type, [&, name = name](dns::ClusterAnswer a) {
        answers[name] = std::move(a);
        if (answers.size() == 5) all.set();
      });
    }
    CO_ASSERT_TRUE(co_await all.wait(10s));
    EXPECT_EQ(resolver->streams_opened(), 1u);

    const auto& api = answers["api.demo.svc.cluster.local"];
    EXPECT_EQ(api.rcode, 0);
    CO_ASSERT_EQ(api.records.size(), 1u);
    EXPECT_EQ(api.records[0].name, "api.demo.svc.cluster.local.");
    EXPECT_EQ(api.records[0].type, 1);
    EXPECT_EQ(api.records[0].rdata, (Bytes{10, 96, 0, 10}));

    const auto& alias = answers["alias.demo.svc.cluster.local"];
    CO_ASSERT_EQ(alias.records.size(), 2u);
    EXPECT_EQ(alias.records[0].type, 5);  // CNAME, its target uncompressed
    EXPECT_EQ(rdata_text(alias.records[0]), std::string("\3api\4demo\3svc\7cluster\5local\0", 28));
    EXPECT_EQ(alias.records[1].name, "api.demo.svc.cluster.local.");

    const auto& srv = answers["_http._tcp.web.demo.svc.cluster.local"];
    CO_ASSERT_EQ(srv.records.size(), 1u);
    EXPECT_EQ(srv.records[0].type, 33);
    EXPECT_EQ(rdata_text(srv.records[0]),
              std::string("\0\0\0\0\0\x50\3web\4demo\3svc\7cluster\5local\0", 34));

    EXPECT_EQ(answers["nope.demo.svc.cluster.local"].rcode, 3);
    EXPECT_TRUE(answers["nope.demo.svc.cluster.local"].records.empty());

    // Over 512 bytes: the agent had to ask again over TCP.
    const auto& big = answers["big.test"];
    CO_ASSERT_EQ(big.records.size(), 1u);
    EXPECT_EQ(big.records[0].rdata.size(), 3u * 251u);
    resolver->stop();
  }()));
}

TEST_F(AgentFixture, EnvIsRefusedOnAnotherPortAndTheErrorSaysSo) {
  EXPECT_TRUE(run_task(io_, [&]() -> asio::awaitable<void> {
    // An agent service on the wrong port: the tunnel resets the stream at once.
    auto wrong_port = [this](tcp::socket s, Target t) {
      t.port = 80;
      client_->open(std::move(s), std::move(t));
    };
    OpenStream open = wrong_port;  // named: GCC 12 mishandles temporaries in co_await calls
    auto env = co_await fetch_environment(open);
    CO_ASSERT_FALSE(env.has_value());
    // The stream's own error: neither a timeout nor a bad document.
    EXPECT_TRUE(env.error().code);
    EXPECT_NE(env.error().code, asio::error::timed_out);
    EXPECT_NE(env.error().code, tunnel::Error::bad_document);
    EXPECT_NE(env.error().message.find("env.lpk.internal"), std::string::npos);
  }()));
}

/// A far end that is a DnsForwarder on the other half of the pair (no tunnel), so the test
/// can break the stream under the resolver.
TEST(AgentDnsResolver, ReopensTheStreamAfterItBreaks) {
  std::unique_ptr<agent::test::Dnsmasq> dnsmasq;
  LPK_START_DNSMASQ(dnsmasq);
  asio::io_context io;
  std::vector<std::shared_ptr<agent::DnsForwarder>> far_ends;
  OpenStream open = [&](tcp::socket s, Target t) {
    EXPECT_EQ(t.host, "dns.lpk.internal");
    EXPECT_EQ(t.port, 53);
    auto f = std::make_shared<agent::DnsForwarder>(std::move(s), dnsmasq->endpoint(),
                                                   agent::DnsForwarderOptions{});
    auto opened = f->open();
    EXPECT_TRUE(opened) << opened.error().message;
    f->start();
    far_ends.push_back(f);
  };
  auto resolver = std::make_shared<AgentDnsResolver>(io.get_executor(), open);
  EXPECT_TRUE(run_task(io, [&]() -> asio::awaitable<void> {
    auto ask = [&](std::string name) -> asio::awaitable<dns::ClusterAnswer> {
      Event done(io.get_executor());
      dns::ClusterAnswer out{255, {}};
      resolver->resolve(name, 1, [&](dns::ClusterAnswer a) {
        out = std::move(a);
        done.set();
      });
      co_await done.wait(5s);
      co_return out;
    };
    auto first = co_await ask("api.demo.svc.cluster.local");
    EXPECT_EQ(first.rcode, 0);
    CO_ASSERT_EQ(far_ends.size(), 1u);
    far_ends[0]->stop();  // the stream breaks (the agent went away)
    // Whatever is asked next gets an answer: SERVFAIL if it raced the break, else a new stream.
    auto second = co_await ask("web.demo.svc.cluster.local");
    if (second.rcode != 0) second = co_await ask("web.demo.svc.cluster.local");
    EXPECT_EQ(second.rcode, 0);
    CO_ASSERT_EQ(second.records.size(), 1u);
    EXPECT_EQ(second.records[0].rdata, (Bytes{10, 96, 0, 11}));
    EXPECT_EQ(resolver->streams_opened(), 2u);
    resolver->stop();
  }()));
}

TEST(AgentDnsResolver, SilentAgentGivesServfailAndStopFailsTheRest) {
  asio::io_context io;
  std::vector<tcp::socket> held;  // a far end that reads nothing and answers nothing
  OpenStream open = [&](tcp::socket s, Target) { held.push_back(std::move(s)); };
  AgentDnsOptions options;
  options.timeout = 200ms;
  auto resolver = std::make_shared<AgentDnsResolver>(io.get_executor(), open, options);
  EXPECT_TRUE(run_task(io, [&]() -> asio::awaitable<void> {
    Event timed_out(io.get_executor()), stopped(io.get_executor());
    int rcode_timeout = -1, rcode_stop = -1;
    resolver->resolve("a.test", 1, [&](dns::ClusterAnswer a) {
      rcode_timeout = a.rcode;
      timed_out.set();
    });
    CO_ASSERT_TRUE(co_await timed_out.wait(5s));
    EXPECT_EQ(rcode_timeout, 2);
    resolver->resolve("b.test", 1, [&](dns::ClusterAnswer a) {
      rcode_stop = a.rcode;
      stopped.set();
    });
    resolver->stop();
    CO_ASSERT_TRUE(co_await stopped.wait(5s));
    EXPECT_EQ(rcode_stop, 2);
    // After stop() nothing is opened and answers still come (SERVFAIL), never inline.
    bool inline_call = true, called = false;
    resolver->resolve("c.test", 1, [&](dns::ClusterAnswer a) {
      called = true;
      EXPECT_FALSE(inline_call);
      EXPECT_EQ(a.rcode, 2);
    });
    inline_call = false;
    co_await asio::post(io, asio::use_awaitable);
    EXPECT_TRUE(called);
    EXPECT_EQ(resolver->streams_opened(), 1u);
  }()));
}

}  // namespace
}  // namespace lpk::proxy
