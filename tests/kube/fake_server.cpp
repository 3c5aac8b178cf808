#include "tests/kube/fake_server.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <stdexcept>

namespace lpk::kube::test {

namespace {

int listen_loopback(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 64) != 0)
    throw std::runtime_error("fake server: cannot listen on 127.0.0.1");
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

/// Accepts until stop; polls so the destructor can end the loop.
template <class Fn>
void accept_loop(int listen_fd, std::atomic<bool>& stop, std::mutex& m,
                 std::vector<std::thread>& workers, Fn&& fn) {
  while (!stop) {
    pollfd p{listen_fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(m);
    workers.emplace_back([fd, &fn] {
      fn(fd);
      ::close(fd);
    });
  }
}

/// Reads the head and a Content-Length body; false on EOF first.
bool read_request(int fd, SeenRequest& r) {
  std::string data;
  char buf[4096];
  size_t head_end;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    data.append(buf, size_t(n));
  }
  std::string head = data.substr(0, head_end);
  size_t line_end = head.find("\r\n");
  std::string first = head.substr(0, line_end);
  r.method = first.substr(0, first.find(' '));
  r.target = first.substr(first.find(' ') + 1, first.rfind(' ') - first.find(' ') - 1);
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    pos = e + 2;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    std::transform(k.begin(), k.end(), k.begin(), ::tolower);
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(' '));
    r.headers[k].push_back(v);
  }
  size_t want = r.headers.count("content-length") ? std::stoul(r.header("content-length")) : 0;
  r.body = data.substr(head_end + 4);
  while (r.body.size() < want) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    r.body.append(buf, size_t(n));
  }
  return true;
}

}  // namespace

FakeServer::FakeServer(Handler respond) : respond_(std::move(respond)) {
  listen_fd_ = listen_loopback(port_);
  acceptor_ = std::thread([this] {
    accept_loop(listen_fd_, stop_, mutex_, workers_, [this](int fd) { serve(fd); });
  });
}

FakeServer::~FakeServer() {
  stop_ = true;
  acceptor_.join();
  for (auto& w : workers_) w.join();
  ::close(listen_fd_);
}

void FakeServer::serve(int fd) {
  SeenRequest r;
  if (!read_request(fd, r)) return;
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(r);
  }
  respond_(r, fd);
}

std::vector<SeenRequest> FakeServer::requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

void FakeServer::hold_until_client_leaves(int fd, std::chrono::milliseconds bound) {
  pollfd p{fd, POLLIN, 0};
  ::poll(&p, 1, int(bound.count()));
}

void FakeServer::send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += size_t(n);
  }
}

std::string FakeServer::response(int code, const std::string& body,
                                 const std::vector<std::string>& headers) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Type: application/json\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  return r + "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

ConnectProxy::ConnectProxy() {
  listen_fd_ = listen_loopback(port_);
  acceptor_ = std::thread([this] {
    accept_loop(listen_fd_, stop_, mutex_, workers_, [this](int fd) { tunnel(fd); });
  });
}

ConnectProxy::~ConnectProxy() {
  stop_ = true;
  acceptor_.join();
  for (auto& w : workers_) w.join();
  ::close(listen_fd_);
}

std::vector<std::string> ConnectProxy::targets() {
  std::lock_guard lock(mutex_);
  return targets_;
}

void ConnectProxy::tunnel(int fd) {
  SeenRequest r;
  if (!read_request(fd, r)) return;
  {
    std::lock_guard lock(mutex_);
    targets_.push_back(r.method + " " + r.target);
  }
  auto colon = r.target.rfind(':');
  if (r.method != "CONNECT" || colon == std::string::npos) {
    FakeServer::send_all(fd, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(std::stoi(r.target.substr(colon + 1))));
  if (::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    FakeServer::send_all(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
    ::close(up);
    return;
  }
  FakeServer::send_all(fd, "HTTP/1.1 200 Connection established\r\n\r\n");
  char buf[16384];
  while (!stop_) {
    pollfd p[2] = {{fd, POLLIN, 0}, {up, POLLIN, 0}};
    if (::poll(p, 2, 100) <= 0) continue;
    bool done = false;
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
      if (n <= 0) {
        done = true;
        break;
      }
      FakeServer::send_all(i == 0 ? up : fd, std::string(buf, size_t(n)));
    }
    if (done) break;
  }
  ::close(up);
}

}  // namespace lpk::kube::test
