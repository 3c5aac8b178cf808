#pragma once
// Helpers for the dns tests (and the proxy's stub DNS tests): queries and answers through ldns,
// blocking clients with deadlines, an io thread per test, a programmable upstream DNS server on
// loopback, and a ClusterResolver that answers what it was told.

// ldns defines true/false as macros unless stdbool.h came first.
#include <stdbool.h>
// clang-format off
#include <ldns/ldns.h>
// clang-format on
#include <poll.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dns/cluster_resolver.hpp"
#include "tests/slack.hpp"

namespace lpk::dns::test {

namespace asio = boost::asio;
using Packet = std::vector<std::uint8_t>;

/// Wire form of a query; `edns_size` 0 means no OPT record.
inline Packet make_query(const std::string& name, ldns_rr_type type, std::uint16_t edns_size = 0,
                         std::uint16_t id = 0x1234) {
  ldns_pkt* pkt = nullptr;
  ldns_pkt_query_new_frm_str(&pkt, name.c_str(), type, LDNS_RR_CLASS_IN, LDNS_RD);
  ldns_pkt_set_id(pkt, id);
  if (edns_size) ldns_pkt_set_edns_udp_size(pkt, edns_size);
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  ldns_pkt2wire(&wire, pkt, &size);
  Packet out(wire, wire + size);
  free(wire);
  ldns_pkt_free(pkt);
  return out;
}

/// A parsed response, freed on destruction.
struct Response {
  ldns_pkt* pkt = nullptr;
  explicit Response(const Packet& wire) {
    if (ldns_wire2pkt(&pkt, wire.data(), wire.size()) != LDNS_STATUS_OK) pkt = nullptr;
  }
  ~Response() {
    if (pkt) ldns_pkt_free(pkt);
  }
  Response(const Response&) = delete;
  bool ok() const { return pkt != nullptr; }
  int rcode() const { return pkt ? ldns_pkt_get_rcode(pkt) : -1; }
  std::size_t answers() const { return pkt ? ldns_rr_list_rr_count(ldns_pkt_answer(pkt)) : 0; }
  std::size_t authority() const { return pkt ? ldns_rr_list_rr_count(ldns_pkt_authority(pkt)) : 0; }
  /// Answer records in presentation form: "name\tTTL\tIN\tTYPE\trdata".
  std::vector<std::string> answer_strings(ldns_rr_list* list = nullptr) const {
    std::vector<std::string> out;
    if (!pkt) return out;
    ldns_rr_list* l = list ? list : ldns_pkt_answer(pkt);
    for (std::size_t i = 0; i < ldns_rr_list_rr_count(l); ++i) {
      char* s = ldns_rr2str(ldns_rr_list_rr(l, i));
      std::string line(s);
      free(s);
      if (!line.empty() && line.back() == '\n') line.pop_back();
      out.push_back(line);
    }
    return out;
  }
  /// The rdata fields of the answers, e.g. "127.77.0.12".
  std::vector<std::string> rdata() const {
    std::vector<std::string> out;
    for (const auto& line : answer_strings()) out.push_back(line.substr(line.rfind('\t') + 1));
    return out;
  }
};

/// Waits until `fd` is readable; false at the deadline. (Asio's blocking calls ignore
/// SO_RCVTIMEO: they poll without a timeout after EAGAIN.)
inline bool readable(int fd, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) == 1;
}

/// Blocking UDP exchange with a deadline; nullopt when nothing came back in time.
inline std::optional<Packet> udp_exchange(const asio::ip::udp::endpoint& server, const Packet& q,
                                          int timeout_ms = 2000 * kTestSlack) {
  asio::io_context io;
  asio::ip::udp::socket s(io, asio::ip::udp::endpoint(server.address(), 0));
  s.send_to(asio::buffer(q), server);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  if (!readable(s.native_handle(), deadline)) return std::nullopt;
  Packet buf(65536);
  const ssize_t n = ::recv(s.native_handle(), buf.data(), buf.size(), 0);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

/// A blocking TCP DNS client (2-byte length framing) with a receive deadline.
class TcpClient {
 public:
  explicit TcpClient(const asio::ip::tcp::endpoint& server, int timeout_ms = 2000 * kTestSlack)
      : socket_(io_), timeout_(timeout_ms) {
    socket_.connect(server);
  }
  void send_raw(const Packet& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  void send(const Packet& q) {
    Packet framed{static_cast<std::uint8_t>(q.size() >> 8), static_cast<std::uint8_t>(q.size())};
    framed.insert(framed.end(), q.begin(), q.end());
    send_raw(framed);
  }
  std::optional<Packet> receive() {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    Packet len(2);
    if (!read_exact(len, deadline)) return std::nullopt;
    Packet msg((len[0] << 8) | len[1]);
    if (!read_exact(msg, deadline)) return std::nullopt;
    return msg;
  }
  /// True when the server closed the connection (EOF) before the deadline.
  bool closed_by_peer() {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    std::uint8_t b;
    if (!readable(socket_.native_handle(), deadline)) return false;
    const ssize_t n = ::recv(socket_.native_handle(), &b, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool read_exact(Packet& buf, std::chrono::steady_clock::time_point deadline) {
    for (std::size_t got = 0; got < buf.size();) {
      if (!readable(socket_.native_handle(), deadline)) return false;
      const ssize_t n = ::recv(socket_.native_handle(), buf.data() + got, buf.size() - got, 0);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  }

  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::chrono::milliseconds timeout_;
};

/// Runs an io_context on its own thread for the duration of a test.
class IoThread {
 public:
  IoThread() : guard_(asio::make_work_guard(io)) {}
  ~IoThread() { stop(); }
  void start() {
    thread_ = std::thread([this] { io.run(); });
  }
  /// Runs `f` on the io thread and waits for it.
  template <class F>
  void run(F&& f) {
    std::promise<void> done;
    asio::post(io, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  void stop() {
    guard_.reset();
    io.stop();
    if (thread_.joinable()) thread_.join();
  }
  asio::io_context io;

 private:
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

/// An upstream DNS server on 127.0.0.1 (UDP and TCP, same port) whose answers come from a
/// function of the parsed query; the function returns nullptr to stay silent.
class FakeUpstream {
 public:
  using Answer = std::function<ldns_pkt*(const ldns_pkt* query, bool tcp)>;
  FakeUpstream(asio::io_context& io, Answer answer)
      : udp_(io), tcp_(io), answer_(std::move(answer)) {
    // The kernel picks the UDP port; TCP must get the same one, which another test (or the
    // TIME_WAIT of an earlier connection) can hold: try a few ports, as dns::Server does.
    const auto loopback = asio::ip::make_address("127.0.0.1");
    for (int attempt = 0;; ++attempt) {
      udp_.open(asio::ip::udp::v4());
      udp_.bind({loopback, 0});
      boost::system::error_code ec;
      tcp_.open(asio::ip::tcp::v4());
      tcp_.set_option(asio::socket_base::reuse_address(true));
      tcp_.bind({loopback, udp_.local_endpoint().port()}, ec);
      if (!ec) break;
      tcp_.close();
      udp_.close();
      if (attempt == 20) throw boost::system::system_error(ec, "FakeUpstream bind");
    }
    tcp_.listen();
    receive();
    accept();
  }
  std::uint16_t port() const { return udp_.local_endpoint().port(); }
  std::atomic<int> queries{0};

 private:
  std::optional<Packet> respond(const std::uint8_t* data, std::size_t n, bool tcp) {
    ++queries;
    ldns_pkt* q = nullptr;
    if (ldns_wire2pkt(&q, data, n) != LDNS_STATUS_OK) return std::nullopt;
    ldns_pkt* r = answer_(q, tcp);
    ldns_pkt_free(q);
    if (!r) return std::nullopt;
    std::uint8_t* wire = nullptr;
    std::size_t size = 0;
    ldns_pkt2wire(&wire, r, &size);
    Packet out(wire, wire + size);
    free(wire);
    ldns_pkt_free(r);
    return out;
  }
  void receive() {
    udp_.async_receive_from(asio::buffer(buf_), from_, [this](auto ec, std::size_t n) {
      if (ec) return;
      if (auto r = respond(buf_.data(), n, false)) udp_.send_to(asio::buffer(*r), from_);
      receive();
    });
  }
  void accept() {
    tcp_.async_accept([this](auto ec, asio::ip::tcp::socket s) {
      if (ec) return;
      auto sock = std::make_shared<asio::ip::tcp::socket>(std::move(s));
      serve(sock);
      accept();
    });
  }
  void serve(std::shared_ptr<asio::ip::tcp::socket> s) {
    auto buf = std::make_shared<Packet>(2);
    asio::async_read(*s, asio::buffer(*buf), [this, s, buf](auto ec, std::size_t) {
      if (ec) return;
      buf->resize(((*buf)[0] << 8) | (*buf)[1]);
      asio::async_read(*s, asio::buffer(*buf), [this, s, buf](auto ec, std::size_t) {
        if (ec) return;
        if (auto r = respond(buf->data(), buf->size(), true)) {
          auto framed = std::make_shared<Packet>(Packet{static_cast<std::uint8_t>(r->size() >> 8),
                                                        static_cast<std::uint8_t>(r->size())});
          framed->insert(framed->end(), r->begin(), r->end());
          asio::write(*s, asio::buffer(*framed));
        }
        buf->resize(2);
        serve(s);
      });
    });
  }
  asio::ip::udp::socket udp_;
  asio::ip::tcp::acceptor tcp_;
  Answer answer_;
  std::array<std::uint8_t, 65536> buf_{};
  asio::ip::udp::endpoint from_;
};

/// A ClusterResolver that answers the names it was given, after a post, and holds the others
/// until release(). Used on the io thread only.
class FakeCluster : public ClusterResolver {
 public:
  explicit FakeCluster(asio::io_context& io) : io_(io) {}
  void resolve(const std::string& name, std::uint16_t, Callback done) override {
    asked.push_back(name);
    auto it = answers.find(name);
    if (it == answers.end()) {
      held_.push_back(std::move(done));
      return;
    }
    asio::post(io_, [done = std::move(done), a = it->second] { done(a); });
  }
  void release(const ClusterAnswer& a) {
    for (auto& d : held_) d(a);
    held_.clear();
  }
  std::map<std::string, ClusterAnswer> answers;
  std::vector<std::string> asked;

 private:
  asio::io_context& io_;
  std::vector<Callback> held_;
};

/// A response to `q` with the given rcode and records in presentation form.
inline ldns_pkt* reply(const ldns_pkt* q, ldns_pkt_rcode rcode,
                       const std::vector<std::string>& answers,
                       const std::vector<std::string>& authority = {}) {
  ldns_pkt* r = ldns_pkt_new();
  ldns_pkt_set_id(r, ldns_pkt_id(q));
  ldns_pkt_set_qr(r, true);
  ldns_pkt_set_rd(r, ldns_pkt_rd(q));
  ldns_pkt_set_ra(r, true);
  ldns_pkt_set_rcode(r, rcode);
  ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION,
                   ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(q), 0)));
  auto push = [&](ldns_pkt_section section, const std::string& text) {
    ldns_rr* rr = nullptr;
    if (ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr) == LDNS_STATUS_OK)
      ldns_pkt_push_rr(r, section, rr);
  };
  for (const auto& a : answers) push(LDNS_SECTION_ANSWER, a);
  for (const auto& a : authority) push(LDNS_SECTION_AUTHORITY, a);
  if (ldns_pkt_edns(q)) ldns_pkt_set_edns_udp_size(r, 1232);
  return r;
}

inline std::string qname(const ldns_pkt* q) {
  char* s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(q), 0)));
  std::string out(s);
  free(s);
  return out;
}

}  // namespace lpk::dns::test
