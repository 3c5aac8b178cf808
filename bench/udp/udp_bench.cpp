// UDP round trips through a relay: datagrams per second and loss.
//
//   lpk_bench_udp echo
//       binds 127.0.0.1:0, prints "echo PORT", answers every datagram to its sender until killed.
//   lpk_bench_udp run --to 127.0.0.1:PORT [--size 512] [--seconds 5] [--window 64]
//       keeps `window` datagrams in flight (each carries a sequence number), for `seconds`,
//       then waits 1 s for stragglers; prints one JSON line: sent, received, lost, seconds,
//       per_second (round trips completed per second), loss (lost / sent).
//
// A window, not a blast: UDP has no flow control, so a sender that outruns a relay measures the
// drops of socket buffers, not the relay. Plain POSIX sockets: the driver must not be the
// bottleneck of what it measures.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "lpk_bench_udp: %s\n", what.c_str());
  std::exit(2);
}

int udp_socket() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket: " + std::string(std::strerror(errno)));
  int size = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
  return fd;
}

int echo() {
  int fd = udp_socket();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind failed");
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("echo %u\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  std::vector<char> buffer(65536);
  for (;;) {
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    auto n = ::recvfrom(fd, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from),
                        &from_len);
    if (n < 0) continue;
    ::sendto(fd, buffer.data(), size_t(n), 0, reinterpret_cast<sockaddr*>(&from), from_len);
  }
}

struct RunFlags {
  sockaddr_in to{};
  size_t size = 512;
  double seconds = 5;
  int window = 64;
};

RunFlags parse(int argc, char** argv) {
  RunFlags f;
  bool have_to = false;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--to") {
      auto colon = value.rfind(':');
      f.to.sin_family = AF_INET;
      f.to.sin_port = htons(uint16_t(std::atoi(value.c_str() + colon + 1)));
      have_to = colon != std::string::npos &&
                ::inet_pton(AF_INET, value.substr(0, colon).c_str(), &f.to.sin_addr) == 1;
    } else if (flag == "--size") {
      f.size = size_t(std::atol(value.c_str()));
    } else if (flag == "--seconds") {
      f.seconds = std::atof(value.c_str());
    } else if (flag == "--window") {
      f.window = std::atoi(value.c_str());
    } else {
      die("unknown flag " + flag + "; see the header of bench/udp/udp_bench.cpp");
    }
  }
  if (!have_to) die("run needs --to 127.0.0.1:PORT");
  if (f.size < 8 || f.size > 65507 || f.window < 1) die("--size 8..65507, --window >= 1");
  return f;
}

int run(const RunFlags& f) {
  int fd = udp_socket();
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&f.to), sizeof f.to) != 0) {
    die("connect: " + std::string(std::strerror(errno)));
  }
  std::vector<char> out(f.size, 'u'), in(65536);
  uint64_t sent = 0, received = 0;
  long inflight = 0;
  const auto start = Clock::now();
  const auto stop_sending = start + std::chrono::duration<double>(f.seconds);
  auto last_done = start;
  for (;;) {
    const auto now = Clock::now();
    const bool sending = now < stop_sending;
    while (sending && inflight < f.window) {
      std::memcpy(out.data(), &sent, sizeof sent);
      if (::send(fd, out.data(), out.size(), 0) < 0) break;
      ++sent;
      ++inflight;
    }
    pollfd p{fd, POLLIN, 0};
    // A datagram lost for good leaves its slot: after 200 ms of silence the window refills.
    if (::poll(&p, 1, sending ? 200 : 1000) <= 0) {
      if (!sending) break;
      inflight = 0;
      continue;
    }
    while (::recv(fd, in.data(), in.size(), MSG_DONTWAIT) > 0) {
      ++received;
      if (inflight > 0) --inflight;
      last_done = Clock::now();
    }
    if (!sending && received >= sent) break;
  }
  const double secs = std::chrono::duration<double>(last_done - start).count();
  std::printf(
      "{\"size\": %zu, \"window\": %d, \"sent\": %llu, \"received\": %llu, \"lost\": %llu, "
      "\"seconds\": %.3f, \"per_second\": %.0f, \"loss\": %.6f}\n",
      f.size, f.window, (unsigned long long)sent, (unsigned long long)received,
      (unsigned long long)(sent - std::min(sent, received)), secs,
      secs > 0 ? double(received) / secs : 0.0,
      sent ? double(sent - std::min(sent, received)) / double(sent) : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "echo") return echo();
  if (mode == "run") return run(parse(argc, argv));
  die("usage: lpk_bench_udp echo | run --to ADDR:PORT [--size N] [--seconds S] [--window W]");
}
