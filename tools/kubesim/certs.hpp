#pragma once
// The PKI kubesim makes for itself at start: a CA, a server certificate, an admin client
// certificate, a bearer token, and the kubeconfig that uses them.

#include <filesystem>
#include <string>
#include <vector>

namespace lpk::kubesim {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

struct Pki {
  KeyPair ca;
  KeyPair server;
  KeyPair admin;  // CN=kubesim-admin, O=system:masters
  std::string token;
};

/// Generates a fresh CA (EC P-256) and the certificates it signs. The server certificate
/// names every entry of ip_sans and dns_sans. Throws std::runtime_error on an OpenSSL failure.
Pki make_pki(const std::vector<std::string>& ip_sans, const std::vector<std::string>& dns_sans);

/// Writes ca.crt, server.{crt,key}, admin.{crt,key} and token under dir (keys mode 0600).
void write_pki(const Pki& pki, const std::filesystem::path& dir);

/// A kubeconfig with two users: "kubesim-admin" (client certificate, the current context)
/// and "kubesim-token" (bearer token), both trusting the CA, for server like
/// "https://127.0.0.1:6443".
std::string make_kubeconfig(const Pki& pki, const std::string& server);

}  // namespace lpk::kubesim
