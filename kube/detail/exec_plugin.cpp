#include "kube/detail/exec_plugin.hpp"

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "kube/text.hpp"

namespace lpk::kube::detail {

void fail_exec_plugin(const ExecConfig& x, const std::string& what) {
  throw ConfigError("kube: exec credential plugin " + x.command + ": " + what);
}

std::string exec_info_json(const ExecConfig& x, const ClusterConfig& c, bool interactive) {
  nlohmann::json spec{{"interactive", interactive}};
  if (x.provide_cluster_info) {
    nlohmann::json cluster{{"server", c.server}};
    if (!c.tls_server_name.empty()) cluster["tls-server-name"] = c.tls_server_name;
    if (c.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!c.ca_pem.empty()) cluster["certificate-authority-data"] = text::base64_encode(c.ca_pem);
    if (!c.proxy_url.empty()) cluster["proxy-url"] = c.proxy_url;
    if (c.disable_compression) cluster["disable-compression"] = true;
    if (!x.cluster_extension.is_null()) cluster["config"] = x.cluster_extension;
    spec["cluster"] = cluster;
  }
  return nlohmann::json{{"kind", "ExecCredential"}, {"apiVersion", x.api_version}, {"spec", spec}}
      .dump();
}

ExecCredential parse_exec_credential(std::string_view out, const ExecConfig& x) {
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    fail_exec_plugin(x, "its output is not a JSON ExecCredential");
  auto str = [&](const nlohmann::json& o, const char* k) -> std::string {
    auto it = o.find(k);
    if (it == o.end() || it->is_null()) return {};
    if (!it->is_string()) fail_exec_plugin(x, std::string("field ") + k + " is not a string");
    return it->get<std::string>();
  };
  if (str(j, "kind") != "ExecCredential")
    fail_exec_plugin(x, "its output is not an ExecCredential");
  if (std::string v = str(j, "apiVersion"); v != x.api_version)
    fail_exec_plugin(x, "configured to use API version " + x.api_version +
                            ", the plugin returned version " + (v.empty() ? "none" : v));
  auto st = j.find("status");
  if (st == j.end() || !st->is_object()) fail_exec_plugin(x, "it did not return a status field");
  ExecCredential c{str(*st, "token"), str(*st, "clientCertificateData"), str(*st, "clientKeyData"),
                   std::nullopt};
  if (c.token.empty() && c.cert_pem.empty() && c.key_pem.empty())
    fail_exec_plugin(x, "it did not return a token or a certificate/key pair");
  if (c.cert_pem.empty() != c.key_pem.empty())
    fail_exec_plugin(x, "it returned only a certificate or a key, not both");
  if (std::string exp = str(*st, "expirationTimestamp"); !exp.empty()) {
    c.expiry = parse_rfc3339(exp);
    if (!c.expiry) fail_exec_plugin(x, "expirationTimestamp \"" + exp + "\" is not RFC 3339");
  }
  return c;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
  int Y, M, D, h, m, sec, n = 0;
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) !=
          6 ||
      n != 19)
    return std::nullopt;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return std::nullopt;
  std::string_view rest = s.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    size_t digits = 0;
    while (digits < rest.size() && std::isdigit(uint8_t(rest[digits]))) ++digits;
    if (digits == 0) return std::nullopt;
    rest.remove_prefix(digits);  // sub-second precision does not matter for an expiry
  }
  int offset = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest).c_str() + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    offset = (oh * 60 + om) * 60 * (rest[0] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  using namespace std::chrono;
  auto days = sys_days(year{Y} / month{unsigned(M)} / day{unsigned(D)});
  sys_seconds t = days + hours{h} + minutes{m} + seconds{sec} - seconds{offset};
  // system_clock counts nanoseconds in 64 bits: years past 2262 would wrap into the past.
  if (t >= time_point_cast<seconds>(system_clock::time_point::max()))
    return system_clock::time_point::max();
  return time_point_cast<system_clock::duration>(t);
}

}  // namespace lpk::kube::detail
