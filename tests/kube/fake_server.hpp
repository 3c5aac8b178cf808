#pragma once
// Real sockets on 127.0.0.1 for client tests: a scripted HTTP/1.1 server (one request per
// connection) that records what it was sent, and an HTTP CONNECT proxy that records its tunnels.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lpk::kube::test {

struct SeenRequest {
  std::string method, target, body;
  std::map<std::string, std::vector<std::string>> headers;  ///< lower-case names
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() || it->second.empty() ? "" : it->second.front();
  }
};

/// Listens on 127.0.0.1:0 and answers each connection's request with respond(request, fd):
/// the handler writes the raw response with send_all and the connection is closed after it.
class FakeServer {
 public:
  using Handler = std::function<void(const SeenRequest&, int fd)>;
  explicit FakeServer(Handler respond);
  ~FakeServer();
  int port() const { return port_; }
  std::vector<SeenRequest> requests();

  static void send_all(int fd, const std::string& data);
  /// Waits until the client closes `fd` (its end of a request the server keeps open, such as
  /// an idle watch), at most `bound`.
  static void hold_until_client_leaves(int fd, std::chrono::milliseconds bound);
  /// A complete response with Content-Length and Connection: close.
  static std::string response(int code, const std::string& body,
                              const std::vector<std::string>& headers = {});

 private:
  void serve(int fd);
  Handler respond_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<SeenRequest> requests_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

/// An HTTP CONNECT proxy on 127.0.0.1:0 that sends every tunnel to 127.0.0.1 on the requested
/// port, whatever the host name, so tests need no resolver.
class ConnectProxy {
 public:
  ConnectProxy();
  ~ConnectProxy();
  int port() const { return port_; }
  std::vector<std::string> targets();  ///< the CONNECT request targets, in order

 private:
  void tunnel(int fd);
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> targets_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

}  // namespace lpk::kube::test
