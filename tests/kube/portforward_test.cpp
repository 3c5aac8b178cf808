#include "kube/portforward.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <functional>
#include <map>
#include <random>

namespace lpk::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint16_t kPort = 4590;

// ---- a self-signed certificate for 127.0.0.1, made in memory --------------------------------

struct Cert {
  std::string cert_pem, key_pem;
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n);
  BIO_free(bio);
  return out;
}

Cert make_cert(const char* common_name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), std::random_device{}() & 0x7fffffff);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:kube.test"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  BIO* c = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(c, x);
  BIO* k = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
  X509_free(x);
  EVP_PKEY_free(key);
  return {bio_text(c), bio_text(k)};
}

const Cert& server_cert() {
  static const Cert cert = make_cert("kube-test-server");
  return cert;
}
const Cert& client_cert() {
  static const Cert cert = make_cert("kube-test-client");
  return cert;
}

// ---- a fake API server: TLS, one request, then a scripted WebSocket ------------------------

using Ws = websocket::stream<ssl::stream<tcp::socket>&>;
std::string frame(std::uint8_t channel, std::string_view payload) {
  return std::string(1, static_cast<char>(channel)) + std::string(payload);
}
std::string port_prefix(std::uint8_t channel, std::uint16_t port = kPort) {
  return frame(channel, std::string{static_cast<char>(port & 0xff), static_cast<char>(port >> 8)});
}

awaitable<void> send(Ws& ws, std::string message, bool text = false) {
  ws.text(text);
  co_await ws.async_write(asio::buffer(message), kTuple);
}
awaitable<void> send_prefixes(Ws& ws) {
  co_await send(ws, port_prefix(0));
  co_await send(ws, port_prefix(1));
}

struct PortForwardServer {
  explicit PortForwardServer(asio::io_context& io)
      : tls(ssl::context::tls_server), acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    tls.use_certificate_chain(asio::buffer(server_cert().cert_pem));
    tls.use_private_key(asio::buffer(server_cert().key_pem), ssl::context::pem);
    tls.add_certificate_authority(asio::buffer(client_cert().cert_pem));
    tls.set_verify_mode(ssl::verify_peer);  // ask for a client certificate, accept none
    tls.set_verify_callback([](bool, ssl::verify_context&) { return true; });
    asio::co_spawn(io, serve(), asio::detached);
  }
  std::string url(std::string prefix = "") const {
    return "https://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + prefix;
  }

  awaitable<void> serve() {
    auto [aec, socket] = co_await acceptor.async_accept(kTuple);
    if (aec) co_return;
    ssl::stream<tcp::socket> stream(std::move(socket), tls);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
    if (hec) co_return;
    X509* peer = SSL_get1_peer_certificate(stream.native_handle());
    got_client_cert = peer != nullptr;
    X509_free(peer);
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    auto [rec, rn] = co_await http::async_read(stream, buffer, req, kTuple);
    if (rec) co_return;
    target = std::string(req.target());
    for (const auto& field : req) headers[std::string(field.name_string())] = field.value();
    if (refuse) {
      refuse->keep_alive(false);
      refuse->prepare_payload();
      co_await http::async_write(stream, *refuse, kTuple);
      co_return;
    }
    Ws ws(stream);
    ws.set_option(websocket::stream_base::decorator([p = echo](websocket::response_type& res) {
      if (!p.empty()) res.set(http::field::sec_websocket_protocol, p);
    }));
    auto [wec] = co_await ws.async_accept(req, kTuple);
    if (wec || !script) co_return;
    co_await script(ws);
  }

  ssl::context tls;
  tcp::acceptor acceptor;
  std::optional<http::response<http::string_body>> refuse;  // answer this instead of 101
  std::string echo = "v4.channel.k8s.io";
  std::function<awaitable<void>(Ws&)> script;
  std::string target;
  std::map<std::string, std::string> headers;
  bool got_client_cert = false;
  std::vector<std::string> received;  // binary messages from the client
};

// Echoes every data-channel message back, recording what arrived, until the client leaves.
awaitable<void> echo_script(Ws& ws, PortForwardServer& server) {
  co_await send_prefixes(ws);
  for (;;) {
    beast::flat_buffer b;
    auto [ec, n] = co_await ws.async_read(b, kTuple);
    if (ec) co_return;
    auto msg = beast::buffers_to_string(b.data());
    server.received.push_back(msg);
    co_await send(ws, msg);
  }
}

PortForwardTarget target_for(const PortForwardServer& server) {
  PortForwardTarget t;
  t.server = server.url("/k8s");
  t.ca_pem = server_cert().cert_pem;
  t.client_cert_pem = client_cert().cert_pem;
  t.client_key_pem = client_cert().key_pem;
  t.headers = {{"Authorization", "Bearer t0k"}, {"Impersonate-User", "bob"}};
  t.proxy_url = "";  // never the environment's proxy in tests
  t.pod_namespace = "ns1";
  t.pod = "pod1";
  t.port = kPort;
  t.timeout = 5s;
  return t;
}

// Runs `test` on the context with a deadline; the test fails if it does not finish.
void run(asio::io_context& io, std::function<awaitable<void>()> test) {
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await test();
        done = true;
        io.stop();
      },
      asio::detached);
  io.run_for(20s);
  ASSERT_TRUE(done) << "the test did not finish in time";
}

awaitable<std::string> read_all(PortForward& pf, error_code& end) {
  std::string out;
  char buf[8192];
  for (;;) {
    auto [ec, n] = co_await pf.read_some(asio::buffer(buf));
    out.append(buf, n);
    if (ec) {
      end = ec;
      co_return out;
    }
  }
}

TEST(PortForward, UpgradesWithHeadersAndEchoesInChunks) {
  asio::io_context io;
  PortForwardServer server(io);
  server.script = [&](Ws& ws) { return echo_script(ws, server); };
  run(io, [&]() -> awaitable<void> {
    auto opened = co_await PortForward::open(io.get_executor(), target_for(server));
    EXPECT_TRUE(opened) << (opened ? "" : opened.error().message);
    if (!opened) co_return;
    auto& pf = **opened;
    std::string payload(100 * 1024 + 7, '\0');
    std::mt19937 rng(7);
    for (auto& c : payload) c = static_cast<char>(rng());
    std::array<asio::const_buffer, 3> parts = {
        asio::buffer(payload.data(), 10), asio::buffer(payload.data() + 10, 50'000),
        asio::buffer(payload.data() + 50'010, payload.size() - 50'010)};
    auto [wec, wn] = co_await pf.write(parts);
    EXPECT_FALSE(wec);
    EXPECT_EQ(wn, payload.size());
    std::string back;
    char buf[4096];
    while (back.size() < payload.size()) {
      auto [ec, n] = co_await pf.read_some(asio::buffer(buf));
      if (ec) break;
      back.append(buf, n);
    }
    EXPECT_TRUE(back == payload) << "echo differs: " << back.size() << " of " << payload.size()
                                 << " bytes back";
    pf.close();
    pf.close();  // idempotent
  });
  EXPECT_EQ(server.target, "/k8s/api/v1/namespaces/ns1/pods/pod1/portforward?ports=4590");
  EXPECT_EQ(server.headers["Authorization"], "Bearer t0k");
  EXPECT_EQ(server.headers["Impersonate-User"], "bob");
  EXPECT_EQ(server.headers["Sec-WebSocket-Protocol"], "v4.channel.k8s.io");
  EXPECT_TRUE(server.got_client_cert);
  ASSERT_GE(server.received.size(), 4u);
  for (const auto& m : server.received) {
    EXPECT_EQ(m[0], '\0') << "every client message is on data channel 0";
    EXPECT_LE(m.size(), 32u * 1024 + 1);
  }
}

TEST(PortForward, ErrorChannelTextFailsTheConnection) {
  asio::io_context io;
  PortForwardServer server(io);
  const std::string text =
      "error forwarding port 4590 to pod pod1, uid 42: failed to connect to localhost:4590 "
      "inside namespace \"x\": connection refused";
  server.script = [&](Ws& ws) -> awaitable<void> {
    co_await send_prefixes(ws);
    co_await send(ws, frame(1, text));
    co_await ws.async_close(websocket::close_code::normal, kTuple);
  };
  run(io, [&]() -> awaitable<void> {
    auto opened = co_await PortForward::open(io.get_executor(), target_for(server));
    EXPECT_TRUE(opened);
    if (!opened) co_return;
    error_code end;
    auto data = co_await read_all(**opened, end);
    EXPECT_EQ(data, "");
    EXPECT_EQ(end, PortForwardErrc::remote_error);
    EXPECT_EQ((*opened)->error_text(), text);
    char b[4];
    auto [again, n] = co_await (*opened)->read_some(asio::buffer(b));
    EXPECT_EQ(again, PortForwardErrc::remote_error) << "errors are sticky";
  });
}

TEST(PortForward, WebSocketCloseIsEndOfFileAfterTheData) {
  asio::io_context io;
  PortForwardServer server(io);
  server.script = [&](Ws& ws) -> awaitable<void> {
    co_await send_prefixes(ws);
    co_await send(ws, frame(0, "hello "));
    co_await send(ws, frame(0, ""));  // empty payloads are ignored
    co_await send(ws, frame(1, ""));
    co_await send(ws, frame(0, "world"));
    co_await ws.async_close(websocket::close_code::normal, kTuple);
  };
  run(io, [&]() -> awaitable<void> {
    auto opened = co_await PortForward::open(io.get_executor(), target_for(server));
    EXPECT_TRUE(opened);
    if (!opened) co_return;
    error_code end;
    EXPECT_EQ(co_await read_all(**opened, end), "hello world");
    EXPECT_EQ(end, asio::error::eof);
  });
}

// Each malformed server behaviour ends the connection with protocol_error, nothing worse.
struct Garbage {
  const char* name;
  std::function<awaitable<void>(Ws&)> script;
};

class PortForwardGarbage : public testing::TestWithParam<Garbage> {};

TEST_P(PortForwardGarbage, EndsTheConnectionWithAProtocolError) {
  asio::io_context io;
  PortForwardServer server(io);
  server.script = GetParam().script;
  run(io, [&]() -> awaitable<void> {
    auto opened = co_await PortForward::open(io.get_executor(), target_for(server));
    EXPECT_TRUE(opened);
    if (!opened) co_return;
    error_code end;
    co_await read_all(**opened, end);
    EXPECT_EQ(end, PortForwardErrc::protocol_error) << end.message();
    EXPECT_FALSE((*opened)->error_text().empty());
  });
}

awaitable<void> text_frame(Ws& ws) {
  co_await send_prefixes(ws);
  co_await send(ws, "0aGVsbG8=", true);
  co_await ws.async_close(websocket::close_code::normal, kTuple);
}
awaitable<void> wrong_channel(Ws& ws) {
  co_await send_prefixes(ws);
  co_await send(ws, frame(2, "data for a port we did not ask for"));
  co_await ws.async_close(websocket::close_code::normal, kTuple);
}
awaitable<void> wrong_port(Ws& ws) {
  co_await send(ws, port_prefix(0, 8080));
  co_await ws.async_close(websocket::close_code::normal, kTuple);
}
awaitable<void> data_before_prefix(Ws& ws) {
  co_await send(ws, frame(0, "no prefix first"));
  co_await ws.async_close(websocket::close_code::normal, kTuple);
}
awaitable<void> channel_255(Ws& ws) {
  co_await send_prefixes(ws);
  co_await send(ws, frame(255, "x"));
  co_await ws.async_close(websocket::close_code::normal, kTuple);
}

INSTANTIATE_TEST_SUITE_P(Frames, PortForwardGarbage,
                         testing::Values(Garbage{"TextFrame", text_frame},
                                         Garbage{"WrongChannel", wrong_channel},
                                         Garbage{"WrongPortPrefix", wrong_port},
                                         Garbage{"DataBeforePrefix", data_before_prefix},
                                         Garbage{"Channel255", channel_255}),
                         [](const auto& info) { return std::string(info.param.name); });

awaitable<PortForwardResult> open_refused(asio::io_context& io, PortForwardServer& server) {
  co_return co_await PortForward::open(io.get_executor(), target_for(server));
}

PortForwardFailure refused_with(http::status status, std::string body,
                                std::string content_type = "application/json") {
  asio::io_context io;
  PortForwardServer server(io);
  server.refuse.emplace(status, 11);
  if (!content_type.empty()) server.refuse->set(http::field::content_type, content_type);
  server.refuse->body() = std::move(body);
  PortForwardFailure out;
  run(io, [&]() -> awaitable<void> {
    auto opened = co_await open_refused(io, server);
    EXPECT_FALSE(opened);
    if (!opened) out = opened.error();
  });
  return out;
}

TEST(PortForward, RbacForbiddenStatusBodyBecomesOneSentence) {
  auto f = refused_with(http::status::forbidden,
                        R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":)"
                        R"("pods \"pod1\" is forbidden: User \"bob\" cannot create resource )"
                        R"(\"pods/portforward\" in API group \"\" in the namespace \"ns1\"",)"
                        R"("reason":"Forbidden","code":403})");
  EXPECT_EQ(f.code, PortForwardErrc::upgrade_refused);
  EXPECT_EQ(f.message,
            "port-forward to pod ns1/pod1 port 4590 refused with HTTP 403: pods \"pod1\" is "
            "forbidden: User \"bob\" cannot create resource \"pods/portforward\" in API group "
            "\"\" in the namespace \"ns1\"");
}

TEST(PortForward, EmptyForbiddenMeansTheSubprotocolWasRefused) {
  auto f = refused_with(http::status::forbidden, "", "");
  EXPECT_EQ(f.code, PortForwardErrc::subprotocol_refused);
  EXPECT_NE(f.message.find("v4.channel.k8s.io"), std::string::npos) << f.message;
}

TEST(PortForward, PlainTextRefusalFromTheKubelet) {
  auto f = refused_with(http::status::bad_request, "pod pod1 is not running\n", "text/plain");
  EXPECT_EQ(f.code, PortForwardErrc::upgrade_refused);
  EXPECT_EQ(
      f.message,
      "port-forward to pod ns1/pod1 port 4590 refused with HTTP 400: pod pod1 is not running");
  EXPECT_EQ(f.message.find('\n'), std::string::npos);
}

TEST(PortForward, MissingSubprotocolEchoIsRefused) {
  asio::io_context io;
  PortForwardServer server(io);
  server.echo = "";
  run(io, [&]() -> awaitable<void> {
    auto opened = co_await PortForward::open(io.get_executor(), target_for(server));
    EXPECT_FALSE(opened);
    if (!opened) {
      EXPECT_EQ(opened.error().code, PortForwardErrc::subprotocol_mismatch);
    }
  });
}

TEST(PortForward, VerifiesTheServerCertificate) {
  asio::io_context io;
  PortForwardServer wrong_ca(io), wrong_name(io), insecure(io);
  insecure.script = [&](Ws& ws) { return echo_script(ws, insecure); };
  run(io, [&]() -> awaitable<void> {
    auto t = target_for(wrong_ca);
    t.ca_pem = make_cert("someone else").cert_pem;
    auto a = co_await PortForward::open(io.get_executor(), t);
    EXPECT_FALSE(a);
    if (!a) {
      EXPECT_NE(a.error().message.find("TLS"), std::string::npos) << a.error().message;
    }
    t = target_for(wrong_name);
    t.tls_server_name = "other.test";  // the certificate names kube.test and 127.0.0.1
    auto b = co_await PortForward::open(io.get_executor(), t);
    EXPECT_FALSE(b);
    t = target_for(insecure);
    t.ca_pem.clear();
    t.insecure = true;
    auto c = co_await PortForward::open(io.get_executor(), t);
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
  });
}

TEST(PortForward, TlsServerNameIsVerifiedInsteadOfTheHost) {
  asio::io_context io;
  PortForwardServer server(io);
  server.script = [&](Ws& ws) { return echo_script(ws, server); };
  run(io, [&]() -> awaitable<void> {
    auto t = target_for(server);
    t.tls_server_name = "kube.test";
    auto opened = co_await PortForward::open(io.get_executor(), t);
    EXPECT_TRUE(opened) << (opened ? "" : opened.error().message);
  });
}

TEST(PortForward, TimesOutOnASilentServer) {
  asio::io_context io;
  tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::socket held(io);
  silent.async_accept(held, [](error_code) {});
  run(io, [&]() -> awaitable<void> {
    PortForwardTarget t;
    t.server = "https://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
    t.insecure = true;
    t.proxy_url = "";
    t.pod_namespace = "ns1";
    t.pod = "pod1";
    t.port = kPort;
    t.timeout = 300ms;
    auto opened = co_await PortForward::open(io.get_executor(), t);
    EXPECT_FALSE(opened);
    if (!opened) {
      EXPECT_NE(opened.error().message.find("timed out"), std::string::npos);
    }
  });
}

// A minimal HTTP CONNECT proxy: records the request head, answers `status`, then relays.
struct ConnectProxy {
  explicit ConnectProxy(asio::io_context& io, int status = 200)
      : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}), status(status) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  std::string url() const {
    return "http://user:pw@127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  }
  static awaitable<void> pump(tcp::socket& from, tcp::socket& to) {
    char buf[16384];
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), kTuple);
      if (ec) break;
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf, n), kTuple);
      if (wec) break;
    }
    error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);
  }
  awaitable<void> serve() {
    auto [aec, client] = co_await acceptor.async_accept(kTuple);
    if (aec) co_return;
    beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    parser.skip(true);
    auto [rec, rn] = co_await http::async_read_header(client, buffer, parser, kTuple);
    if (rec) co_return;
    head = std::string(parser.get().method_string()) + " " + std::string(parser.get().target());
    auth = std::string(parser.get()[http::field::proxy_authorization]);
    std::string answer = "HTTP/1.1 " + std::to_string(status) + " Whatever\r\n\r\n";
    co_await asio::async_write(client, asio::buffer(answer), kTuple);
    if (status != 200) co_return;
    auto target = std::string(parser.get().target());
    tcp::socket upstream(client.get_executor());
    auto port = static_cast<std::uint16_t>(std::stoi(target.substr(target.rfind(':') + 1)));
    auto [cec] =
        co_await upstream.async_connect({asio::ip::make_address("127.0.0.1"), port}, kTuple);
    if (cec) co_return;
    co_await (pump(client, upstream) && pump(upstream, client));
  }
  tcp::acceptor acceptor;
  int status;
  std::string head, auth;
};

TEST(PortForward, GoesThroughAnHttpConnectProxy) {
  asio::io_context io;
  PortForwardServer server(io);
  server.script = [&](Ws& ws) { return echo_script(ws, server); };
  ConnectProxy proxy(io);
  run(io, [&]() -> awaitable<void> {
    auto t = target_for(server);
    t.proxy_url = proxy.url();
    auto opened = co_await PortForward::open(io.get_executor(), t);
    EXPECT_TRUE(opened) << (opened ? "" : opened.error().message);
    if (!opened) co_return;
    std::string ping = "through the proxy";
    std::array<asio::const_buffer, 1> one = {asio::buffer(ping)};
    co_await (*opened)->write(one);
    char buf[64];
    auto [ec, n] = co_await (*opened)->read_some(asio::buffer(buf));
    EXPECT_EQ(std::string(buf, n), ping);
  });
  auto port = std::to_string(server.acceptor.local_endpoint().port());
  EXPECT_EQ(proxy.head, "CONNECT 127.0.0.1:" + port);
  EXPECT_EQ(proxy.auth, "Basic dXNlcjpwdw==");
}

TEST(PortForward, RefusedConnectIsOneSentence) {
  asio::io_context io;
  PortForwardServer server(io);
  ConnectProxy proxy(io, 407);
  run(io, [&]() -> awaitable<void> {
    auto t = target_for(server);
    t.proxy_url = proxy.url();
    auto opened = co_await PortForward::open(io.get_executor(), t);
    EXPECT_FALSE(opened);
    if (!opened) {
      EXPECT_EQ(opened.error().code, PortForwardErrc::proxy_refused);
      EXPECT_NE(opened.error().message.find("HTTP 407"), std::string::npos);
      // The proxy is named, its credentials are not.
      EXPECT_NE(opened.error().message.find("the proxy http://127.0.0.1:"), std::string::npos);
      EXPECT_EQ(opened.error().message.find("pw"), std::string::npos);
    }
  });
}

TEST(PortForward, BadTargetsAreRefusedBeforeConnecting) {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    PortForwardTarget t;
    t.server = "ftp://x";
    t.pod_namespace = "a";
    t.pod = "b";
    t.port = 1;
    auto a = co_await PortForward::open(io.get_executor(), t);
    EXPECT_FALSE(a);
    t.server = "https://127.0.0.1:1";
    t.client_cert_pem = "only a cert";
    auto b = co_await PortForward::open(io.get_executor(), t);
    EXPECT_FALSE(b);
    if (!b) {
      EXPECT_EQ(b.error().code, PortForwardErrc::bad_target);
    }
    t.client_cert_pem.clear();
    t.proxy_url = "ftp://127.0.0.1:1080";
    auto c = co_await PortForward::open(io.get_executor(), t);
    EXPECT_FALSE(c);
    if (!c) {
      EXPECT_EQ(c.error().code, PortForwardErrc::bad_target);
      EXPECT_NE(c.error().message.find("socks5://"), std::string::npos);
    }
  });
}

// ---- pure pieces ----------------------------------------------------------------------------

std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

TEST(DemuxV4, PrefixThenDataThenErrorText) {
  detail::V4State st;
  auto prefix0 = bytes(port_prefix(0)), prefix1 = bytes(port_prefix(1));
  EXPECT_EQ(detail::demux_v4(st, prefix0, kPort).kind, detail::V4Message::ignore);
  EXPECT_EQ(detail::demux_v4(st, prefix1, kPort).kind, detail::V4Message::ignore);
  auto data = bytes(frame(0, "abc"));
  auto m = detail::demux_v4(st, data, kPort);
  EXPECT_EQ(m.kind, detail::V4Message::data);
  EXPECT_EQ(std::string(m.payload.begin(), m.payload.end()), "abc");
  // A second 3-byte message on channel 0 is data, not a prefix.
  EXPECT_EQ(detail::demux_v4(st, prefix0, kPort).kind, detail::V4Message::data);
  auto err = bytes(frame(1, "boom"));
  EXPECT_EQ(detail::demux_v4(st, err, kPort).kind, detail::V4Message::error_text);
  EXPECT_EQ(detail::demux_v4(st, {}, kPort).kind, detail::V4Message::ignore);
}

TEST(DemuxV4, RejectsWhatV4DoesNotAllow) {
  detail::V4State st;
  auto short_prefix = bytes(std::string("\0\xee", 2));  // the port's high byte missing
  EXPECT_EQ(detail::demux_v4(st, short_prefix, kPort).kind, detail::V4Message::protocol_error);
  auto other_port = bytes(port_prefix(1, 80));
  EXPECT_EQ(detail::demux_v4(st, other_port, kPort).kind, detail::V4Message::protocol_error);
  auto channel3 = bytes(frame(3, "x"));
  EXPECT_EQ(detail::demux_v4(st, channel3, kPort).kind, detail::V4Message::protocol_error);
}

TEST(NoProxy, MatchesNamesSuffixesAndStar) {
  EXPECT_TRUE(detail::no_proxy_matches("example.com, .corp", "api.corp"));
  EXPECT_TRUE(detail::no_proxy_matches("example.com", "example.com"));
  EXPECT_TRUE(detail::no_proxy_matches("example.com", "a.example.com"));
  EXPECT_FALSE(detail::no_proxy_matches("example.com", "badexample.com"));
  EXPECT_TRUE(detail::no_proxy_matches("*", "anything"));
  EXPECT_FALSE(detail::no_proxy_matches("", "anything"));
}

}  // namespace
}  // namespace lpk::kube
