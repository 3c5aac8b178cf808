#include "kube/detail/http.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <sstream>

namespace lpk::kube::detail {

namespace {

constexpr size_t kMaxBody = 256u << 20;
constexpr size_t kMaxErrorBody = 1u << 20;

std::string env_either(const char* upper, const char* lower) {
  const char* v = std::getenv(upper);
  if (!v || !*v) v = std::getenv(lower);
  return v ? v : "";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// An IP address as 16 bytes (IPv4 mapped), or nothing.
std::optional<std::array<uint8_t, 16>> parse_ip(const std::string& s) {
  std::array<uint8_t, 16> a{};
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    a[10] = a[11] = 0xff;
    std::memcpy(&a[12], &v4, 4);
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.data()) == 1) return a;
  return std::nullopt;
}

bool is_loopback(const std::array<uint8_t, 16>& a) {
  static const std::array<uint8_t, 16> v6_loop{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  bool mapped = std::all_of(a.begin(), a.begin() + 10, [](uint8_t b) { return b == 0; }) &&
                a[10] == 0xff && a[11] == 0xff;
  return a == v6_loop || (mapped && a[12] == 127);
}

bool in_cidr(const std::array<uint8_t, 16>& ip, const std::string& cidr) {
  auto slash = cidr.find('/');
  auto net = parse_ip(cidr.substr(0, slash));
  if (!net) return false;
  int bits = std::atoi(cidr.c_str() + slash + 1);
  if (cidr.find(':') == std::string::npos) bits += 96;  // IPv4 prefix within the mapped form
  if (bits < 0 || bits > 128) return false;
  for (int i = 0; i < bits; ++i) {
    uint8_t m = uint8_t(0x80 >> (i % 8));
    if ((ip[i / 8] & m) != ((*net)[i / 8] & m)) return false;
  }
  return true;
}

/// golang.org/x/net/http/httpproxy useProxy(): NO_PROXY entries are "*", IPs, CIDRs, and
/// domains (with optional leading "." or "*."), each with an optional ":port".
bool no_proxy_matches(const std::string& no_proxy, const std::string& host, int port) {
  auto ip = parse_ip(host);
  std::string h = lower(host);
  std::istringstream ss(no_proxy);
  for (std::string p; std::getline(ss, p, ',');) {
    p.erase(0, p.find_first_not_of(" \t"));
    p.erase(p.find_last_not_of(" \t") + 1);
    p = lower(p);
    if (p.empty()) continue;
    if (p == "*") return true;
    if (p.find('/') != std::string::npos) {
      if (ip && in_cidr(*ip, p)) return true;
      continue;
    }
    std::string phost = p, pport;
    if (p.front() == '[') {
      auto close = p.find(']');
      phost = p.substr(1, close == std::string::npos ? std::string::npos : close - 1);
      if (close != std::string::npos && close + 1 < p.size() && p[close + 1] == ':')
        pport = p.substr(close + 2);
    } else if (std::count(p.begin(), p.end(), ':') == 1) {
      phost = p.substr(0, p.find(':'));
      pport = p.substr(p.find(':') + 1);
    }
    bool port_ok = pport.empty() || pport == std::to_string(port);
    if (auto pip = parse_ip(phost)) {
      if (ip && *ip == *pip && port_ok) return true;
      continue;
    }
    if (phost.empty()) continue;
    if (phost.rfind("*.", 0) == 0) phost.erase(0, 1);
    bool match_host = phost.front() != '.';
    if (match_host) phost = "." + phost;
    bool suffix = h.size() >= phost.size() && h.compare(h.size() - phost.size(), phost.size(), phost) == 0;
    if ((suffix || (match_host && h == phost.substr(1))) && port_ok) return true;
  }
  return false;
}

std::string curl_proxy(std::string url) {
  if (url.find("://") == std::string::npos) url = "http://" + url;
  // Go's socks5 dialer sends the host name to the proxy, which is curl's socks5h.
  if (url.rfind("socks5://", 0) == 0) url = "socks5h://" + url.substr(9);
  return url;
}

std::string warning_text(const std::string& v) {
  // RFC 7234 warn-value: 299 - "text" [date]
  auto q = v.find('"');
  if (v.size() < 5 || q == std::string::npos || !std::isdigit(uint8_t(v[0]))) return v;
  std::string out;
  for (size_t i = q + 1; i < v.size() && v[i] != '"'; ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

struct Exchange {
  const HttpRequest* req;
  HttpResponse* res;
  CURL* curl;
  std::exception_ptr error;
  bool body_too_big = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* x = static_cast<Exchange*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    x->res->headers.clear();  // a new response (after a CONNECT or a 100 Continue)
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    x->res->headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* x = static_cast<Exchange*>(user);
  std::string_view chunk(data, size * n);
  long code = 0;
  curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
  if (x->req->on_data && code >= 200 && code < 300) {
    try {
      if (!x->req->on_data(chunk)) {
        x->res->aborted = true;
        return 0;
      }
    } catch (...) {
      x->error = std::current_exception();
      return 0;
    }
    return chunk.size();
  }
  size_t limit = code >= 200 && code < 300 ? kMaxBody : kMaxErrorBody;
  if (x->res->body.size() + chunk.size() > limit) {
    x->body_too_big = true;
    return 0;
  }
  x->res->body.append(chunk);
  return chunk.size();
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* x = static_cast<Exchange*>(user);
  if (x->req->stop.stop_requested()) {
    x->res->aborted = true;
    return 1;
  }
  return 0;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  return {};
}

std::string proxy_for(const ClusterConfig& cluster, const ServerUrl& server) {
  if (!cluster.proxy_url.empty()) return curl_proxy(cluster.proxy_url);
  std::string p = server.scheme == "https" ? env_either("HTTPS_PROXY", "https_proxy")
                                           : env_either("HTTP_PROXY", "http_proxy");
  if (p.empty()) return {};
  if (lower(server.host) == "localhost") return {};
  if (auto ip = parse_ip(server.host); ip && is_loopback(*ip)) return {};
  if (no_proxy_matches(env_either("NO_PROXY", "no_proxy"), server.host, server.port)) return {};
  return curl_proxy(p);
}

Http::Http(Credentials& credentials) : credentials_(credentials) {
  global_init();
  const ClusterConfig& c = credentials_.config().cluster;
  auto url = parse_server_url(c.server, true);
  if (!url) throw ConfigError("kube: server \"" + c.server + "\" is not a URL; fix the kubeconfig");
  server_ = *url;
  proxy_ = proxy_for(c, server_);
}

namespace {

using CurlPtr = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using ListPtr = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

void set_blob(CURL* c, CURLoption opt, const std::string& pem) {
  curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  curl_easy_setopt(c, opt, &blob);
}

/// TLS per client-go: a CA replaces the system roots; tls-server-name is both SNI and the name
/// verified, which curl does for the URL's host, so the URL names it and CONNECT_TO dials the
/// real address.
/// An https:// proxy gets the same settings: Go's Transport makes its TLS with the proxy from
/// the same TLSClientConfig (and the port-forward dialer does too).
void set_tls(CURL* c, const ClusterConfig& cluster, const Credentials::Material& m) {
  if (cluster.insecure_skip_tls_verify) {
    for (auto opt : {CURLOPT_SSL_VERIFYPEER, CURLOPT_SSL_VERIFYHOST, CURLOPT_PROXY_SSL_VERIFYPEER,
                     CURLOPT_PROXY_SSL_VERIFYHOST}) {
      curl_easy_setopt(c, opt, 0L);
    }
  } else if (!cluster.ca_pem.empty()) {
    set_blob(c, CURLOPT_CAINFO_BLOB, cluster.ca_pem);
    curl_easy_setopt(c, CURLOPT_CAPATH, static_cast<char*>(nullptr));
    set_blob(c, CURLOPT_PROXY_CAINFO_BLOB, cluster.ca_pem);
    curl_easy_setopt(c, CURLOPT_PROXY_CAPATH, static_cast<char*>(nullptr));
  }
  if (!m.client_cert_pem.empty()) {
    set_blob(c, CURLOPT_SSLCERT_BLOB, m.client_cert_pem);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    set_blob(c, CURLOPT_SSLKEY_BLOB, m.client_key_pem);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    set_blob(c, CURLOPT_PROXY_SSLCERT_BLOB, m.client_cert_pem);
    curl_easy_setopt(c, CURLOPT_PROXY_SSLCERTTYPE, "PEM");
    set_blob(c, CURLOPT_PROXY_SSLKEY_BLOB, m.client_key_pem);
    curl_easy_setopt(c, CURLOPT_PROXY_SSLKEYTYPE, "PEM");
  }
}

}  // namespace

HttpResponse Http::perform(const HttpRequest& req) {
  HttpResponse res;
  Credentials::Material m = credentials_.current();
  const ClusterConfig& cluster = credentials_.config().cluster;
  CurlPtr curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    res.error = "curl_easy_init failed";
    return res;
  }
  CURL* c = curl.get();
  ServerUrl target = server_;
  ListPtr connect_to(nullptr, curl_slist_free_all);
  ListPtr headers(nullptr, curl_slist_free_all);
  auto add_header = [&](const std::string& h) {
    headers.reset(curl_slist_append(headers.release(), h.c_str()));
  };
  if (!cluster.tls_server_name.empty() && cluster.tls_server_name != server_.host) {
    target.host = cluster.tls_server_name;
    std::string route = target.host_port() + ":" + server_.host_port();
    connect_to.reset(curl_slist_append(nullptr, route.c_str()));
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to.get());
    add_header("Host: " + server_.host_port());
  }
  std::string url = target.base() + req.target;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(c, CURLOPT_PROXY, proxy_.c_str());  // "" also stops curl reading the env
  set_tls(c, cluster, m);
  if (!cluster.disable_compression) curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
  add_header("Accept: application/json");
  add_header("User-Agent: lpk/kube");
  add_header("Expect:");
  if (!req.content_type.empty()) add_header("Content-Type: " + req.content_type);
  for (const auto& h : m.headers) add_header(h);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (req.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(req.body.size()));
    }
  }
  Exchange x{&req, &res, c, nullptr};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 15L);
  if (req.timeout_seconds > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT, req.timeout_seconds);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.code);
  if (x.error) std::rethrow_exception(x.error);
  log_warnings(res);
  if (x.body_too_big) {
    res.error = "the response body is larger than " + std::to_string(kMaxBody >> 20) + " MiB";
  } else if (rc != CURLE_OK && !res.aborted) {
    res.error = std::string("cannot reach the API server ") + server_.base() +
                (proxy_.empty() ? "" : " through proxy " + proxy_) + ": " +
                (errbuf[0] ? errbuf : curl_easy_strerror(rc));
    while (!res.error.empty() && res.error.back() == '\n') res.error.pop_back();
  }
  return res;
}

void Http::log_warnings(const HttpResponse& res) {
  for (const auto& [k, v] : res.headers) {
    if (strcasecmp(k.c_str(), "Warning") != 0) continue;
    std::string text = warning_text(v);
    std::lock_guard lock(warned_mutex_);
    if (warned_.insert(text).second) spdlog::warn("kube: the API server warns: {}", text);
  }
}

}  // namespace lpk::kube::detail
