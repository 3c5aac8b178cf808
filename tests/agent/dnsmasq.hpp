#pragma once
// A real dnsmasq for the DNS tests, playing the cluster's DNS on its own loopback address and
// port: answers only from the records given here (no resolv.conf, no /etc/hosts), NXDOMAIN
// for other names of its local zones. Stopped (by its pid) on destruction.
//
// tools/install-deps.sh installs dnsmasq (dnsmasq-base): a missing binary skips a test, a
// dnsmasq that does not come up fails it (LPK_START_DNSMASQ).

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/temp_dir.hpp"

extern char** environ;

namespace lpk::agent::test {

namespace asio = boost::asio;

/// Text of 3 x 250 bytes: the TXT answer for big.test needs more than 512 bytes, so a query
/// without EDNS comes back truncated over UDP.
inline std::string big_txt_chunk(char c) { return std::string(250, c); }

inline std::string find_dnsmasq() {
  for (const char* p : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return {};
}

class Dnsmasq {
 public:
  /// Empty when dnsmasq is missing or did not come up; `why` says which (find_dnsmasq() tells
  /// the two apart). A dnsmasq that exits at once (its address and port taken between the
  /// probe and its bind) is tried again on another address.
  static std::unique_ptr<Dnsmasq> start(std::string& why) {
    auto binary = find_dnsmasq();
    if (binary.empty()) {
      why = "dnsmasq is not installed (tools/install-deps.sh installs dnsmasq-base)";
      return nullptr;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto d = std::unique_ptr<Dnsmasq>(new Dnsmasq());
      if (d->launch(binary, why)) return d;
      if (!d->exited_early_) break;  // it runs but does not answer: another try would not
    }
    return nullptr;
  }
  ~Dnsmasq() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  asio::ip::udp::endpoint endpoint() const { return {address_, port_}; }
  /// A resolv.conf naming this server (lpk's "ADDR#PORT" form).
  std::string resolv_conf() const {
    return dir_.write("resolv.conf", "# test upstream\nsearch demo.svc.cluster.local\nnameserver " +
                                         address_.to_string() + "#" + std::to_string(port_) + "\n");
  }
  const lpk::test::TempDir& dir() const { return dir_; }

 private:
  Dnsmasq() {
    ::chmod(dir_.path().c_str(), 0755);
    // A loopback address of its own, so parallel tests and other engineers never collide.
    std::random_device rd;
    address_ = asio::ip::make_address_v4("127.53." + std::to_string(1 + rd() % 250) + "." +
                                         std::to_string(1 + rd() % 250));
  }

  bool launch(const std::string& binary, std::string& why) {
    port_ = free_port();
    dir_.write("hosts",
               "10.96.0.10 api.demo.svc.cluster.local\n"
               "10.96.0.11 web.demo.svc.cluster.local\n"
               "10.96.0.99 ready.test\n");
    std::string big = "txt-record=big.test";
    for (char c : {'a', 'b', 'c'}) big += ",\"" + big_txt_chunk(c) + "\"";
    auto conf = dir_.write(
        "dnsmasq.conf",
        "no-resolv\nno-hosts\naddn-hosts=" + dir_.path() + "/hosts\n" + "listen-address=" +
            address_.to_string() + "\nbind-interfaces\nport=" + std::to_string(port_) +
            "\nlocal=/cluster.local/\nlocal=/test/\nlocal-ttl=30\n" +
            "cname=alias.demo.svc.cluster.local,api.demo.svc.cluster.local\n" +
            "srv-host=_http._tcp.web.demo.svc.cluster.local,web.demo.svc.cluster.local,80\n" + big +
            "\nlog-facility=" + dir_.path() + "/dnsmasq.log\n");
    std::vector<std::string> args = {binary, "--keep-in-foreground", "--conf-file=" + conf,
                                     "--pid-file="};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      why = "cannot start dnsmasq";
      pid_ = -1;
      return false;
    }
    if (!wait_ready()) {
      std::ifstream log(dir_.path() + "/dnsmasq.log");
      why = "dnsmasq " + std::string(exited_early_ ? "exited" : "did not answer") + " on " +
            address_.to_string() + ":" + std::to_string(port_) + " (within 10 s); its log:\n" +
            std::string(std::istreambuf_iterator<char>(log), {});
      if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
      }
      return false;
    }
    return true;
  }

  std::uint16_t free_port() {
    asio::io_context io;
    asio::ip::udp::socket u(io, asio::ip::udp::endpoint(address_, 0));
    return u.local_endpoint().port();
  }

  /// Asks for ready.test until the answer comes (each try waits up to 200 ms for it).
  bool wait_ready() {
    static const std::uint8_t query[] = {0x12, 0x34, 1,   0,   0,   1,   0,   0,   0, 0,
                                         0,    0,    5,   'r', 'e', 'a', 'd', 'y', 4, 't',
                                         'e',  's',  't', 0,   0,   1,   0,   1};
    asio::io_context io;
    asio::ip::udp::socket s(io, asio::ip::udp::endpoint(address_, 0));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exited_early_ = true;
        return false;
      }
      boost::system::error_code ec;
      s.send_to(asio::buffer(query), endpoint(), 0, ec);
      pollfd p{s.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 200) == 1) {
        std::uint8_t answer[512];
        auto n = ::recv(s.native_handle(), answer, sizeof answer, 0);
        if (n > 12 && answer[0] == 0x12 && (answer[3] & 0x0F) == 0) return true;
      }
    }
    return false;
  }

  // dnsmasq (run as root) drops to nobody, who must reach its files: so /tmp rather than a
  // $TMPDIR that may be private, and 0755 (Dnsmasq() sets it).
  lpk::test::TempDir dir_{"lpk-agent-test.", "/tmp"};
  asio::ip::address_v4 address_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool exited_early_ = false;
};

}  // namespace lpk::agent::test

/// In SetUp or a test body: starts a Dnsmasq into `var` (a std::unique_ptr<Dnsmasq>). Skips
/// the test when dnsmasq is not installed; fails it when dnsmasq is there but does not come up.
#define LPK_START_DNSMASQ(var)                                           \
  do {                                                                   \
    std::string lpk_dnsmasq_why;                                         \
    var = ::lpk::agent::test::Dnsmasq::start(lpk_dnsmasq_why);           \
    if (!var && ::lpk::agent::test::find_dnsmasq().empty())              \
      GTEST_SKIP() << lpk_dnsmasq_why;                                   \
    if (!var) FAIL() << lpk_dnsmasq_why;                                 \
  } while (false)
