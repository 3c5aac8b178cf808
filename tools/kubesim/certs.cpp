#include "tools/kubesim/certs.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <stdexcept>

#include "kube/text.hpp"

namespace lpk::kubesim {

namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("openssl: ") + what + " failed");
}

PKey new_key() {
  PKey k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EVP_EC_gen");
  return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

Cert new_cert(EVP_PKEY* key, const std::string& cn, const std::string& org) {
  Cert c(X509_new());
  X509_set_version(c.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 365L * 24 * 3600);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  if (!org.empty()) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return c;
}

std::string pem_of(X509* c) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, n);
  BIO_free(b);
  return s;
}

std::string pem_of(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, n);
  BIO_free(b);
  return s;
}

KeyPair sign_leaf(X509* ca, EVP_PKEY* ca_key, const std::string& cn, const std::string& org,
                  const std::string& eku, const std::string& san) {
  PKey key = new_key();
  Cert c = new_cert(key.get(), cn, org);
  X509_set_issuer_name(c.get(), X509_get_subject_name(ca));
  add_ext(c.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(c.get(), ca, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  add_ext(c.get(), ca, NID_ext_key_usage, eku);
  add_ext(c.get(), ca, NID_subject_key_identifier, "hash");
  add_ext(c.get(), ca, NID_authority_key_identifier, "keyid:always");
  if (!san.empty()) add_ext(c.get(), ca, NID_subject_alt_name, san);
  check(X509_sign(c.get(), ca_key, EVP_sha256()) > 0, "X509_sign");
  return {pem_of(c.get()), pem_of(key.get())};
}

void write_file(const std::filesystem::path& p, const std::string& data, bool secret) {
  std::ofstream f(p, std::ios::trunc | std::ios::binary);
  if (!f) throw std::runtime_error("cannot write " + p.string());
  f << data;
  f.close();
  if (secret) {
    std::filesystem::permissions(
        p, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
}

std::string random_token() {
  unsigned char raw[24];
  RAND_bytes(raw, sizeof raw);
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : raw) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

}  // namespace

Pki make_pki(const std::vector<std::string>& ip_sans, const std::vector<std::string>& dns_sans) {
  Pki pki;
  PKey ca_key = new_key();
  Cert ca = new_cert(ca_key.get(), "lpk-kubesim-ca", "");
  X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get()));
  add_ext(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_ext(ca.get(), ca.get(), NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
  add_ext(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  add_ext(ca.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  check(X509_sign(ca.get(), ca_key.get(), EVP_sha256()) > 0, "X509_sign CA");
  pki.ca = {pem_of(ca.get()), pem_of(ca_key.get())};

  std::string san;
  for (const auto& ip : ip_sans) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  for (const auto& d : dns_sans) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  pki.server = sign_leaf(ca.get(), ca_key.get(), "kube-apiserver", "", "serverAuth", san);
  pki.admin =
      sign_leaf(ca.get(), ca_key.get(), "kubesim-admin", "system:masters", "clientAuth", "");
  pki.token = random_token();
  return pki;
}

void write_pki(const Pki& pki, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  write_file(dir / "ca.crt", pki.ca.cert_pem, false);
  write_file(dir / "ca.key", pki.ca.key_pem, true);
  write_file(dir / "server.crt", pki.server.cert_pem, false);
  write_file(dir / "server.key", pki.server.key_pem, true);
  write_file(dir / "admin.crt", pki.admin.cert_pem, false);
  write_file(dir / "admin.key", pki.admin.key_pem, true);
  write_file(dir / "token", pki.token, true);
}

std::string make_kubeconfig(const Pki& pki, const std::string& server) {
  std::string ca = text::base64_encode(pki.ca.cert_pem);
  return "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: " +
         server + "\n    certificate-authority-data: " + ca +
         "\nusers:\n- name: kubesim-admin\n  user:\n    client-certificate-data: " +
         text::base64_encode(pki.admin.cert_pem) +
         "\n    client-key-data: " + text::base64_encode(pki.admin.key_pem) +
         "\n- name: kubesim-token\n  user:\n    token: " + pki.token +
         "\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: "
         "kubesim-admin\n    namespace: default\n- name: kubesim-token\n  context:\n    "
         "cluster: kubesim\n    user: kubesim-token\n    namespace: default\n"
         "current-context: kubesim\n";
}

}  // namespace lpk::kubesim
