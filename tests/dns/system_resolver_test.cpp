#include "dns/system_resolver.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/temp_dir.hpp"

namespace lpk::dns {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SystemResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config.resolv_conf = (dir / "resolv.conf").string();
    config.backup = (dir / "resolv.conf.backup").string();
    config.ns = "dev";
    config.mode = "resolv.conf";
    std::ofstream(config.resolv_conf, std::ios::binary) << original;
  }
  int run(const std::vector<std::string>& args) {
    out.str("");
    err.str("");
    return run_resolver_command(args, out, err);
  }
  std::vector<std::string> args(std::string cmd) {
    // --force: nothing serves the stub's address in these tests (see RefusesAnAddress...).
    return {cmd,           "--resolv-conf", config.resolv_conf, "--backup", config.backup,
            "--namespace", "dev",           "--mode",           config.mode, "--force"};
  }

  // Odd bytes on purpose: no final newline, a tab, a comment; restore must be exact.
  const std::string original =
      "# from DHCP\nnameserver 192.0.2.53\nsearch corp.example\toffice.example\noptions "
      "edns0 timeout:2\nnameserver 198.51.100.1";
  lpk::test::TempDir tmp{"lpk-resolver-"};
  const fs::path dir{tmp.path()};
  ResolverConfig config;
  std::ostringstream out, err;
};

TEST_F(SystemResolverTest, InstallPointsAtTheStubAndUninstallRestoresByteForByte) {
  auto a = args("install");
  a.insert(a.end(), {"--address", "127.77.0.53"});
  ASSERT_EQ(run(a), 0) << err.str();
  const std::string live = slurp(config.resolv_conf);
  EXPECT_NE(live.find("nameserver 127.77.0.53\n"), std::string::npos) << live;
  EXPECT_EQ(live.find("192.0.2.53"), std::string::npos) << live;
  EXPECT_NE(live.find("search dev.svc.cluster.local svc.cluster.local cluster.local corp.example "
                      "office.example\n"),
            std::string::npos)
      << live;
  EXPECT_NE(live.find("options edns0 timeout:2"), std::string::npos);
  EXPECT_EQ(slurp(config.backup), original);
  EXPECT_EQ(upstream_resolv_conf(config), config.backup);  // the stub forwards to the originals

  ASSERT_EQ(run(args("status")), 0);
  EXPECT_NE(out.str().find("installed\n"), std::string::npos) << out.str();

  ASSERT_EQ(run(a), 0) << err.str();  // twice: the backup still holds the original
  EXPECT_EQ(slurp(config.backup), original);

  ASSERT_EQ(run(args("uninstall")), 0) << err.str();
  EXPECT_EQ(slurp(config.resolv_conf), original);
  EXPECT_FALSE(fs::exists(config.backup));
  ASSERT_EQ(run(args("uninstall")), 0);  // idempotent
  EXPECT_NE(out.str().find("not installed"), std::string::npos);
}

TEST_F(SystemResolverTest, RefusesAnAddressWhereNothingAnswersUnlessForced) {
  // 127.77.255.254: the last address of lpk's default pool, which no session's stub takes.
  ASSERT_FALSE(answers_dns(boost::asio::ip::make_address("127.77.255.254"), 53, 300));
  std::vector<std::string> a = {"install", "--resolv-conf", config.resolv_conf, "--backup",
                                config.backup, "--mode", "resolv.conf", "--address",
                                "127.77.255.254"};
  EXPECT_EQ(run(a), 1);
  EXPECT_NE(err.str().find("nothing answers DNS at 127.77.255.254:53"), std::string::npos)
      << err.str();
  EXPECT_EQ(slurp(config.resolv_conf), original);
  EXPECT_FALSE(fs::exists(config.backup));
  a.push_back("--force");
  EXPECT_EQ(run(a), 0) << err.str();
  EXPECT_EQ(run(args("uninstall")), 0) << err.str();
  EXPECT_EQ(slurp(config.resolv_conf), original);
}

TEST(AnswersDns, AnyReplyWithTheQueryIdCounts) {
  // A stand-in server on a port of its own: it echoes the query back with QR set.
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof at;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&at), &len), 0);
  std::thread server([fd] {
    unsigned char buf[512];
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    auto n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 12) return;
    buf[2] |= 0x80;
    ::sendto(fd, buf, n, 0, reinterpret_cast<sockaddr*>(&from), from_len);
  });
  EXPECT_TRUE(answers_dns(boost::asio::ip::make_address("127.0.0.1"), ntohs(at.sin_port), 2000));
  server.join();
  ::close(fd);
  EXPECT_FALSE(answers_dns(boost::asio::ip::make_address("127.0.0.1"), ntohs(at.sin_port), 200))
      << "nothing listens there any more";
}

TEST_F(SystemResolverTest, DryRunPrintsAndChangesNothing) {
  auto a = args("install");
  a.push_back("--dry-run");
  ASSERT_EQ(run(a), 0) << err.str();
  EXPECT_NE(out.str().find("would write " + config.resolv_conf), std::string::npos);
  EXPECT_NE(out.str().find("nameserver 127.77.0.53"), std::string::npos);
  EXPECT_EQ(slurp(config.resolv_conf), original);
  EXPECT_FALSE(fs::exists(config.backup));
}

TEST_F(SystemResolverTest, PlainResolvConfNeedsPort53) {
  auto a = args("install");
  a.insert(a.end(), {"--address", "127.77.0.53:5353"});
  EXPECT_EQ(run(a), 1);
  EXPECT_NE(err.str().find("port 53"), std::string::npos);
  EXPECT_EQ(slurp(config.resolv_conf), original);
}

TEST_F(SystemResolverTest, BadFlagsSayWhatIsWrong) {
  EXPECT_EQ(run({"install", "--bogus", "1"}), 2);
  EXPECT_NE(err.str().find("--bogus"), std::string::npos);
  EXPECT_EQ(run({"install", "--address", "not-an-ip"}), 2);
  const std::string message = err.str();
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 1) << message;
  EXPECT_EQ(run({"frobnicate"}), 2);
  EXPECT_EQ(run({}), 2);
}

TEST_F(SystemResolverTest, SystemdResolvedRoutesTheZoneThroughADummyLink) {
  // Fake ip and resolvectl that log their arguments.
  const fs::path log = dir / "calls.log";
  for (const char* prog : {"ip", "resolvectl"}) {
    std::ofstream script(dir / prog);
    script << "#!/bin/sh\necho \"" << prog << " $*\" >> " << log.string() << "\n";
    script.close();
    fs::permissions(dir / prog, fs::perms::owner_all);
  }
  std::ofstream(config.resolv_conf) << "nameserver 127.0.0.53\noptions edns0\n";
  EXPECT_EQ(detect_mode(ResolverConfig{.resolv_conf = config.resolv_conf}), "resolved");
  std::vector<std::string> a = {"install",
                                "--resolv-conf",
                                config.resolv_conf,
                                "--namespace",
                                "dev",
                                "--address",
                                "127.77.0.53:5353",
                                "--ip",
                                (dir / "ip").string(),
                                "--resolvectl",
                                (dir / "resolvectl").string()};
  ASSERT_EQ(run(a), 0) << err.str();
  a[0] = "uninstall";
  ASSERT_EQ(run(a), 0) << err.str();
  const std::string calls = slurp(log);
  EXPECT_EQ(calls,
            "ip link add lpk0 type dummy\n"
            "ip link set lpk0 up\n"
            "resolvectl dns lpk0 127.77.0.53:5353\n"
            "resolvectl domain lpk0 ~cluster.local dev.svc.cluster.local svc.cluster.local "
            "cluster.local\n"
            "resolvectl default-route lpk0 false\n"
            "resolvectl revert lpk0\n"
            "ip link delete lpk0\n");
}

}  // namespace
}  // namespace lpk::dns
