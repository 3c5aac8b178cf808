#include "kube/auth.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "kube/detail/exec_plugin.hpp"
#include "kube/detail/oidc.hpp"
#include "kube/text.hpp"

namespace lpk::kube {

namespace {

// client-go's cached file token source: a one-minute period with ten seconds of leeway.
constexpr auto kTokenFileRefresh = std::chrono::seconds(50);

std::optional<std::string> read_token(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  const char* ws = " \t\r\n";
  t.erase(0, t.find_first_not_of(ws));
  t.erase(t.find_last_not_of(ws) + 1);
  if (t.empty()) return std::nullopt;
  return t;
}

/// Header names may not carry every byte of an extra key; client-go percent-encodes the rest.
std::string header_key_escape(const std::string& key) {
  static const std::string legal = "!#$%&'*+-.^_`|~";
  std::string out;
  for (unsigned char c : key) {
    if (std::isalnum(c) || (legal.find(char(c)) != std::string::npos && c != '%')) {
      out += char(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

void add_impersonation(const UserConfig& u, std::vector<std::string>& headers) {
  if (u.impersonate_user.empty()) return;
  headers.push_back("Impersonate-User: " + u.impersonate_user);
  if (!u.impersonate_uid.empty()) headers.push_back("Impersonate-Uid: " + u.impersonate_uid);
  for (const auto& g : u.impersonate_groups) headers.push_back("Impersonate-Group: " + g);
  for (const auto& [k, values] : u.impersonate_extra)
    for (const auto& v : values)
      headers.push_back("Impersonate-Extra-" + header_key_escape(k) + ": " + v);
}

}  // namespace

Credentials::Credentials(RestConfig config) : config_(std::move(config)) {}

bool Credentials::exec_active() const {
  // UpdateTransportConfig: a configured token, basic auth or certificate wins over the plugin.
  const UserConfig& u = config_.user;
  return u.exec && u.token.empty() && u.token_file.empty() && u.username.empty() &&
         u.password.empty() && u.client_cert_pem.empty();
}

std::string Credentials::file_token_locked() {
  auto now = std::chrono::steady_clock::now();
  if (file_read_at_ && now - *file_read_at_ < kTokenFileRefresh && !file_token_.empty())
    return file_token_;
  if (auto t = read_token(config_.user.token_file)) {
    file_token_ = *t;
    file_read_at_ = now;
  } else {
    spdlog::error("kube: unable to read the token file {}; using the last token read",
                  config_.user.token_file);
    if (file_token_.empty()) file_token_ = config_.user.token;
  }
  return file_token_;
}

std::string Credentials::oidc_token_locked() {
  auto& o = *config_.user.oidc;
  bool expired = detail::id_token_expired(o.id_token, std::chrono::system_clock::now());
  if (!(oidc_refresh_ || expired) || o.refresh_token.empty()) return o.id_token;
  auto tokens = detail::refresh_oidc(o);  // throws the one-line reason
  oidc_refresh_ = false;
  o.id_token = tokens.id_token;
  o.refresh_token = tokens.refresh_token;
  spdlog::info("kube: refreshed the oidc id-token of user \"{}\"", o.user_name);
  try {
    detail::persist_oidc_tokens(o.kubeconfig, o.user_name, tokens);
  } catch (const ConfigError& e) {
    spdlog::warn("{}", e.what());  // the session goes on with the tokens it holds
  }
  return o.id_token;
}

Credentials::Material Credentials::current() {
  std::lock_guard lock(mutex_);
  const UserConfig& u = config_.user;
  Material m;
  if (exec_active()) {
    if (!exec_ || (exec_->expiry && std::chrono::system_clock::now() > *exec_->expiry)) {
      auto c = detail::run_exec_plugin(*u.exec, config_.cluster);
      exec_ = ExecResult{c.token, c.cert_pem, c.key_pem, c.expiry};
    }
    if (!exec_->token.empty()) m.headers.push_back("Authorization: Bearer " + exec_->token);
    m.client_cert_pem = exec_->cert_pem;
    m.client_key_pem = exec_->key_pem;
  } else {
    std::string token = u.oidc                 ? oidc_token_locked()
                        : u.token_file.empty() ? u.token
                                               : file_token_locked();
    if (!token.empty())
      m.headers.push_back("Authorization: Bearer " + token);
    else if (!u.username.empty() || !u.password.empty())
      m.headers.push_back("Authorization: Basic " +
                          text::base64_encode(u.username + ":" + u.password));
    m.client_cert_pem = u.client_cert_pem;
    m.client_key_pem = u.client_key_pem;
  }
  add_impersonation(u, m.headers);
  return m;
}

bool Credentials::unauthorized() {
  std::lock_guard lock(mutex_);
  if (exec_active()) {
    exec_.reset();
    return true;
  }
  if (!config_.user.token_file.empty()) {
    file_read_at_.reset();
    return true;
  }
  if (config_.user.oidc && !config_.user.oidc->refresh_token.empty()) {
    oidc_refresh_ = true;
    return true;
  }
  return false;
}

}  // namespace lpk::kube
