// lpk-kubesim-demo-api: the demo's "api" and "worker" services. GET /api/hits increments a
// counter in redis and answers {"hits":N,"greeting":...,"pod":...}. The greeting comes from a
// file (a configMap volume), the redis password from an env var (a secret). GET /work answers
// {"role":...,"greeting":...,"pod":...} (what worker serves); GET /api/work is api calling
// http://$WORKER_HOST:8080/work and answering {"pod":...,"worker":<its answer>}. Blocking and
// one-connection-at-a-time on purpose: it is a demo workload, not part of lpk.

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace {

std::string env(const char* k, const char* def) {
  const char* v = std::getenv(k);
  return v && *v ? v : def;
}

int dial(const std::string& host, const std::string& port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return -1;
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

// One RESP command; returns the first reply line ("+OK", ":5", "-ERR ...").
std::string redis(int fd, std::initializer_list<std::string> args) {
  std::string cmd = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) cmd += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  if (write(fd, cmd.data(), cmd.size()) != ssize_t(cmd.size())) return "-ERR write";
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string read_greeting();

std::string hits_body() {
  std::string greeting = read_greeting();
  int fd = dial(env("REDIS_HOST", "redis"),
                env("REDIS_SERVICE_PORT", "6379") /* REDIS_PORT is the tcp:// link variable */);
  if (fd < 0) return "";
  std::string pw = env("REDIS_PASSWORD", "");
  if (!pw.empty() && redis(fd, {"AUTH", pw}) != "+OK") {
    close(fd);
    return "";
  }
  std::string n = redis(fd, {"INCR", "hits"});
  close(fd);
  if (n.empty() || n[0] != ':') return "";
  return "{\"hits\":" + n.substr(1) + ",\"greeting\":\"" + greeting + "\",\"pod\":\"" +
         env("HOSTNAME", "") + "\"}\n";
}

std::string read_greeting() {
  std::ifstream g(env("GREETING_FILE", "/etc/demo/greeting"));
  std::string greeting;
  std::getline(g, greeting);
  return greeting;
}

std::string work_body() {
  return "{\"role\":\"" + env("ROLE", "api") + "\",\"greeting\":\"" + read_greeting() +
         "\",\"pod\":\"" + env("HOSTNAME", "") + "\"}";
}

// One GET to the worker service; its body, or "" when it cannot be reached.
std::string call_worker() {
  int fd = dial(env("WORKER_HOST", "worker"), "8080");
  if (fd < 0) return "";
  std::string req = "GET /work HTTP/1.0\r\nHost: worker\r\n\r\n";
  std::string res;
  if (write(fd, req.data(), req.size()) == ssize_t(req.size())) {
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) res.append(buf, n);
  }
  close(fd);
  auto body = res.find("\r\n\r\n");
  if (res.rfind("HTTP/1.", 0) != 0 || res.find(" 200 ") == std::string::npos ||
      body == std::string::npos) {
    return "";
  }
  return res.substr(body + 4);
}

std::string api_work_body() {
  auto worker = call_worker();
  while (!worker.empty() && (worker.back() == '\n' || worker.back() == '\r')) worker.pop_back();
  if (worker.empty()) return "";
  return "{\"pod\":\"" + env("HOSTNAME", "") + "\",\"worker\":" + worker + "}\n";
}

void serve(int c) {
  char buf[4096];
  ssize_t n = read(c, buf, sizeof buf);
  std::string req(buf, n > 0 ? n : 0);
  std::string status = "404 Not Found", body = "not found\n";
  if (req.rfind("GET /healthz", 0) == 0) {
    status = "200 OK";
    body = "ok\n";
  } else if (req.rfind("GET /api/hits", 0) == 0) {
    body = hits_body();
    status = body.empty() ? "503 Service Unavailable" : "200 OK";
    if (body.empty()) body = "redis unavailable\n";
  } else if (req.rfind("GET /work", 0) == 0) {
    status = "200 OK";
    body = work_body() + "\n";
  } else if (req.rfind("GET /api/work", 0) == 0) {
    body = api_work_body();
    status = body.empty() ? "502 Bad Gateway" : "200 OK";
    if (body.empty()) body = "worker unavailable\n";
  }
  std::string res =
      "HTTP/1.1 " + status +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  if (write(c, res.data(), res.size()) < 0) {
  }
  close(c);
}

// Every address of the pod, IPv6 and IPv4 alike (one dual-stack socket), so that the demo
// serves on an IPv6 cluster (`lpk-kubesim up --ip-family ipv6`) as on an IPv4 one.
int listen_any(int port) {
  int one = 1, zero = 0;
  int s = socket(AF_INET6, SOCK_STREAM, 0);
  if (s >= 0) {
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(s, 64) == 0) return s;
    close(s);
  }
  // A kernel without IPv6.
  s = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(s, 64) != 0) return -1;
  return s;
}

}  // namespace

int main() {
  // In a container the demo api is PID 1, which the kernel spares SIGTERM's default action:
  // without a handler a pod deletion waits out the whole grace period for the SIGKILL.
  signal(SIGTERM, [](int) { _exit(0); });
  int port = std::atoi(env("PORT", "8080").c_str());
  int s = listen_any(port);
  if (s < 0) {
    std::cerr << "demo-api: cannot listen on port " << port << "\n";
    return 1;
  }
  std::cout << "demo-api: listening on " << port << std::endl;
  for (;;) {
    int c = accept(s, nullptr, nullptr);
    if (c >= 0) serve(c);
  }
}
