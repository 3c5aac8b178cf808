#include "tools/kubesim/tokens.hpp"

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <stdexcept>

#include "kube/text.hpp"

namespace lpk::kubesim {

struct TokenIssuer::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

std::string base64url_encode(const std::string& in) {
  std::string s = text::base64_encode(in);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

std::optional<std::string> base64url_decode(const std::string& in) {
  std::string s = in;
  for (char& c : s) {
    if (c == '+' || c == '/' || c == '=') return std::nullopt;
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  while (s.size() % 4) s += '=';
  return text::base64_decode(s);
}

std::vector<std::string> service_account_groups(const std::string& ns) {
  return {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"};
}

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ES256 signatures are r||s, 32 bytes each (RFC 7518 section 3.4); OpenSSL speaks DER.
std::string sign_es256(EVP_PKEY* key, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string der;
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, (const unsigned char*)data.data(), data.size()) == 1;
  if (ok) {
    der.resize(len);
    ok = EVP_DigestSign(ctx, (unsigned char*)der.data(), &len, (const unsigned char*)data.data(),
                        data.size()) == 1;
    der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("openssl: signing a token failed");
  const unsigned char* p = (const unsigned char*)der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, long(der.size()));
  if (!sig) throw std::runtime_error("openssl: bad ECDSA signature");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), (unsigned char*)raw.data(), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), (unsigned char*)raw.data() + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

bool verify_es256(EVP_PKEY* key, const std::string& data, const std::string& raw) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn((const unsigned char*)raw.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn((const unsigned char*)raw.data() + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (der_len <= 0) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, der, size_t(der_len), (const unsigned char*)data.data(),
                             data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

}  // namespace

TokenIssuer::TokenIssuer() : key_(std::make_unique<Key>()) {
  key_->pkey = EVP_EC_gen("P-256");
  if (!key_->pkey) throw std::runtime_error("openssl: EVP_EC_gen failed");
  // The key id is a digest of the public key, as the apiserver derives it.
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key_->pkey, &der);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, size_t(n > 0 ? n : 0), digest);
  OPENSSL_free(der);
  kid_ = base64url_encode(std::string((const char*)digest, sizeof digest));
}

TokenIssuer::~TokenIssuer() = default;

std::string TokenIssuer::issue(const TokenSubject& s, std::chrono::system_clock::time_point* expires) {
  int64_t now = unix_now();
  int64_t lifetime = s.expiration_seconds;
  json private_claim = {{"namespace", s.ns}, {"serviceaccount", {{"name", s.name}, {"uid", s.uid}}}};
  if (!s.pod_name.empty()) {
    private_claim["pod"] = {{"name", s.pod_name}, {"uid", s.pod_uid}};
    if (lifetime == 3607) {
      private_claim["warnafter"] = now + lifetime;
      lifetime = 365LL * 24 * 3600;
    }
  }
  json claims = {{"aud", s.audiences.empty() ? json::array({kApiAudience}) : json(s.audiences)},
                 {"exp", now + lifetime},
                 {"iat", now},
                 {"iss", kApiAudience},
                 {"jti", new_uid()},
                 {"kubernetes.io", private_claim},
                 {"nbf", now},
                 {"sub", std::string(kServiceAccountPrefix) + s.ns + ":" + s.name}};
  if (expires) *expires = std::chrono::system_clock::time_point(std::chrono::seconds(now + lifetime));
  json header = {{"alg", "ES256"}, {"kid", kid_}};
  std::string signing = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
  return signing + "." + base64url_encode(sign_es256(key_->pkey, signing));
}

std::optional<json> TokenIssuer::claims(const std::string& token) const {
  size_t a = token.find('.');
  size_t b = a == std::string::npos ? a : token.find('.', a + 1);
  if (b == std::string::npos || token.find('.', b + 1) != std::string::npos) return std::nullopt;
  auto sig = base64url_decode(token.substr(b + 1));
  auto body = base64url_decode(token.substr(a + 1, b - a - 1));
  if (!sig || !body || !verify_es256(key_->pkey, token.substr(0, b), *sig)) return std::nullopt;
  json c = json::parse(*body, nullptr, false);
  if (!c.is_object()) return std::nullopt;
  return c;
}

std::optional<TokenUser> TokenIssuer::authenticate(const std::string& token,
                                                   const Store& store) const {
  auto c = claims(token);
  if (!c) return std::nullopt;
  int64_t now = unix_now();
  if (!(*c)["exp"].is_number() || (*c)["exp"].get<int64_t>() < now) return std::nullopt;
  if ((*c)["nbf"].is_number() && (*c)["nbf"].get<int64_t>() > now + 60) return std::nullopt;
  if (c->value("iss", "") != kApiAudience) return std::nullopt;
  const json& aud = (*c)["aud"];
  bool ours = aud.is_array() && std::find(aud.begin(), aud.end(), kApiAudience) != aud.end();
  if (!ours) return std::nullopt;
  const json& k = (*c)["kubernetes.io"];
  if (!k.is_object()) return std::nullopt;
  std::string ns = k.value("namespace", "");
  json sa_claim = k.value("serviceaccount", json::object());
  auto sa = store.get("serviceaccounts", ns, sa_claim.value("name", ""));
  if (!sa || (*sa)["metadata"].value("uid", "") != sa_claim.value("uid", "")) return std::nullopt;
  if (k.contains("pod")) {
    auto pod = store.get("pods", ns, k["pod"].value("name", ""));
    if (!pod || (*pod)["metadata"].value("uid", "") != k["pod"].value("uid", "")) {
      return std::nullopt;
    }
  }
  return TokenUser{c->value("sub", ""), service_account_groups(ns)};
}

}  // namespace lpk::kubesim
