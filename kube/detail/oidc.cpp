#include "kube/detail/oidc.hpp"

#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "kube/text.hpp"

namespace lpk::kube::detail {

namespace {

constexpr auto kExpiryDelta = std::chrono::seconds(10);  // client-go's expiryDelta

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string s(in);
  for (auto& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4 != 0) s += '=';
  return text::base64_decode(s);
}

std::string form_escape(CURL* c, const std::string& v) {
  std::unique_ptr<char, decltype(&curl_free)> e(
      curl_easy_escape(c, v.data(), static_cast<int>(v.size())), curl_free);
  return e ? e.get() : "";
}

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One blocking request; returns the body of a 200, else throws with `what` and the reason.
std::string fetch(const OidcConfig& o, const std::string& url, const std::string* form,
                  const std::string& what) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  CURL* c = curl.get();
  std::string body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (!o.issuer_ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(o.issuer_ca_pem.data()), o.issuer_ca_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    curl_easy_setopt(c, CURLOPT_CAPATH, static_cast<char*>(nullptr));
  }
  std::string fields;
  if (form) {
    // oauth2's client credentials in the Authorization header (RFC 6749 §2.3.1).
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    auto user = form_escape(c, o.client_id), password = form_escape(c, o.client_secret);
    curl_easy_setopt(c, CURLOPT_USERNAME, user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form->c_str());
  }
  auto rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK) {
    throw ConfigError(what + " (" + url + "): " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  if (status != 200) {
    auto text = body.substr(0, 200);
    for (auto& ch : text) ch = ch == '\n' || ch == '\r' ? ' ' : ch;
    throw ConfigError(what + " (" + url + "): HTTP " + std::to_string(status) + " " + text);
  }
  return body;
}

std::string token_endpoint(const OidcConfig& o) {
  auto issuer = o.issuer_url;
  while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
  auto body = fetch(o, issuer + "/.well-known/openid-configuration", nullptr, "discovery failed");
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("token_endpoint") || !doc["token_endpoint"].is_string())
    throw ConfigError("the discovery document of " + issuer + " has no token_endpoint");
  return doc["token_endpoint"].get<std::string>();
}

}  // namespace

std::optional<std::int64_t> jwt_expiry(std::string_view jwt) {
  auto first = jwt.find('.');
  auto second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
  if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos)
    return std::nullopt;
  auto payload = base64url_decode(jwt.substr(first + 1, second - first - 1));
  if (!payload) return std::nullopt;
  auto claims = nlohmann::json::parse(*payload, nullptr, false);
  if (!claims.is_object() || !claims.contains("exp") || !claims["exp"].is_number())
    return std::nullopt;
  return static_cast<std::int64_t>(claims["exp"].get<double>());
}

bool id_token_expired(std::string_view jwt, std::chrono::system_clock::time_point now) {
  auto exp = jwt_expiry(jwt);
  if (!exp) return false;
  return now + kExpiryDelta > std::chrono::system_clock::time_point(std::chrono::seconds(*exp));
}

OidcTokens refresh_oidc(const OidcConfig& o) {
  auto prefix = "kube: the oidc id-token of user \"" + o.user_name + "\" could not be refreshed: ";
  auto suffix = "; log in again (e.g. `kubectl oidc-login`) to get new tokens into " + o.kubeconfig;
  if (o.refresh_token.empty() || o.issuer_url.empty() || o.client_id.empty())
    throw ConfigError(prefix + "it needs refresh-token, idp-issuer-url and client-id" + suffix);
  try {
    auto endpoint = token_endpoint(o);
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    auto form =
        "grant_type=refresh_token&refresh_token=" + form_escape(curl.get(), o.refresh_token);
    auto answer = nlohmann::json::parse(fetch(o, endpoint, &form, "the token endpoint refused"),
                                        nullptr, false);
    if (!answer.is_object() || !answer.contains("id_token") || !answer["id_token"].is_string())
      throw ConfigError("the token response has no id_token");
    OidcTokens t{answer["id_token"].get<std::string>(), o.refresh_token};
    if (answer.contains("refresh_token") && answer["refresh_token"].is_string())
      t.refresh_token = answer["refresh_token"].get<std::string>();
    return t;
  } catch (const ConfigError& e) {
    throw ConfigError(prefix + e.what() + suffix);
  }
}

void persist_oidc_tokens(const std::string& file, const std::string& user,
                         const OidcTokens& tokens) {
  auto fail = [&](const std::string& why) {
    return ConfigError("kube: the refreshed oidc tokens could not be written to " + file + ": " +
                       why + "; the session uses them, but the next run will refresh again");
  };
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    throw fail(e.what());
  }
  bool found = false;
  for (auto entry : doc["users"]) {
    if (!entry["name"] || entry["name"].as<std::string>("") != user) continue;
    auto config = entry["user"]["auth-provider"]["config"];
    config["id-token"] = tokens.id_token;
    config["refresh-token"] = tokens.refresh_token;
    found = true;
    break;
  }
  if (!found) throw fail("it has no user \"" + user + "\" with an auth-provider any more");
  struct stat st {};
  mode_t mode = ::stat(file.c_str(), &st) == 0 ? st.st_mode & 07777 : 0600;
  auto temp = file + ".lpk-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    YAML::Emitter emitter;
    emitter << doc;
    out << emitter.c_str() << "\n";
    if (!out.flush()) throw fail("cannot write " + temp);
  }
  ::chmod(temp.c_str(), mode);
  std::error_code ec;
  std::filesystem::rename(temp, file, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    throw fail(ec.message());
  }
}

}  // namespace lpk::kube::detail
