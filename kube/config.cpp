#include "kube/config.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kube/detail/kubeconfig.hpp"
#include "kube/detail/server_url.hpp"
#include "kube/text.hpp"

namespace lpk::kube {

namespace {

namespace fs = std::filesystem;
using detail::Kubeconfig;

constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::optional<std::string> read_file(const std::string& path, std::string& error) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    error = path + " is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path + " (" + std::strerror(errno) + ")";
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string must_read(const std::string& path, const std::string& what) {
  std::string error;
  auto text = read_file(path, error);
  if (!text) throw ConfigError("kube: unable to read " + what + ": " + error + "; fix the path");
  return *text;
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

std::string home_dir() {
  if (std::string h = env("HOME"); !h.empty()) return h;
  return "/root";
}

/// loader.go Load(): the explicit file must exist; KUBECONFIG entries are deduplicated, empty or
/// missing ones skipped; unreadable or unparsable files are errors.
Kubeconfig load_files(const LoadOptions& o) {
  std::vector<std::string> files;
  if (!o.kubeconfig.empty()) {
    std::error_code ec;
    if (!fs::exists(o.kubeconfig, ec))
      throw ConfigError("kube: --kubeconfig " + o.kubeconfig +
                        " does not exist; pass the path of an existing kubeconfig");
    files.push_back(o.kubeconfig);
  } else if (std::string list = env("KUBECONFIG"); !list.empty()) {
    std::istringstream ss(list);
    for (std::string f; std::getline(ss, f, ':');)
      if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
  } else {
    files.push_back(home_dir() + "/.kube/config");
  }
  Kubeconfig merged;
  for (const auto& f : files) {
    std::error_code ec;
    if (f.empty() || (o.kubeconfig.empty() && !fs::exists(f, ec))) continue;
    std::string error;
    auto text = read_file(f, error);
    if (!text) throw ConfigError("kube: error loading kubeconfig: " + error + "; fix or remove it");
    merge_kubeconfig(merged, detail::parse_kubeconfig(*text, f));
  }
  return merged;
}

std::string searched(const LoadOptions& o) {
  if (!o.kubeconfig.empty()) return o.kubeconfig;
  if (std::string list = env("KUBECONFIG"); !list.empty()) return "KUBECONFIG=" + list;
  return home_dir() + "/.kube/config";
}

std::string files_of(const Kubeconfig& k) {
  std::string out;
  for (const auto& f : k.files) out += (out.empty() ? "" : ":") + f;
  return out.empty() ? "(no kubeconfig file found)" : out;
}

struct EmptyConfig {};  // client-go's ErrEmptyConfig: the in-cluster fallback may apply

void validate_cluster(const std::string& name, const detail::RawCluster& c,
                      std::vector<std::string>& errors) {
  if (c.server.empty()) errors.push_back("no server found for cluster \"" + name + "\"");
  if (!c.proxy_url.empty()) {
    auto scheme = c.proxy_url.substr(0, c.proxy_url.find("://"));
    if (c.proxy_url.find("://") == std::string::npos ||
        (scheme != "http" && scheme != "https" && scheme != "socks5"))
      errors.push_back("invalid proxy-url \"" + c.proxy_url + "\" for cluster \"" + name +
                       "\" (the scheme must be http, https or socks5)");
  }
  if (!c.ca_file.empty() && !c.ca_data.empty())
    errors.push_back("certificate-authority-data and certificate-authority are both specified for " +
                     name);
  if (c.insecure && (!c.ca_file.empty() || !c.ca_data.empty()))
    errors.push_back("cluster \"" + name +
                     "\" sets insecure-skip-tls-verify together with a certificate authority");
  std::string error;
  if (!c.ca_file.empty() && !read_file(c.ca_file, error))
    errors.push_back("unable to read certificate-authority for " + name + ": " + error);
}

void validate_exec(const std::string& name, const detail::RawUser& u,
                   std::vector<std::string>& errors) {
  const ExecConfig& x = *u.exec;
  if (u.auth_provider)
    errors.push_back("authProvider cannot be provided in combination with an exec plugin for " +
                     name);
  if (x.command.empty()) errors.push_back("exec.command must be specified for " + name);
  if (x.api_version.empty()) errors.push_back("exec.apiVersion must be specified for " + name);
  for (const auto& [k, v] : x.env)
    if (k.empty()) errors.push_back("exec.env variable name must be specified for " + name);
  const std::string& m = x.interactive_mode;
  if (m.empty())
    errors.push_back("exec.interactiveMode must be specified for " + name +
                     " (Never, IfAvailable or Always)");
  else if (m != "Never" && m != "IfAvailable" && m != "Always")
    errors.push_back("invalid exec.interactiveMode for " + name + ": \"" + m + "\"");
}

void validate_user(const std::string& name, const detail::RawUser& u,
                   std::vector<std::string>& errors) {
  std::vector<std::string> methods;
  if (!u.token.empty()) methods.push_back("token");
  if (!u.username.empty() || !u.password.empty()) methods.push_back("basicAuth");
  if (!u.cert_file.empty() || !u.cert_data.empty()) {
    if (!u.cert_file.empty() && !u.cert_data.empty())
      errors.push_back("client-certificate-data and client-certificate are both specified for " +
                       name);
    if (!u.key_file.empty() && !u.key_data.empty())
      errors.push_back("client-key-data and client-key are both specified for " + name);
    if (u.key_file.empty() && u.key_data.empty())
      errors.push_back("client-key-data or client-key must be specified for " + name +
                       " to use the client certificate");
    std::string error;
    if (!u.cert_file.empty() && !read_file(u.cert_file, error))
      errors.push_back("unable to read client-certificate for " + name + ": " + error);
    if (!u.key_file.empty() && !read_file(u.key_file, error))
      errors.push_back("unable to read client-key for " + name + ": " + error);
  }
  if (u.exec) validate_exec(name, u, errors);
  if (!u.token_file.empty() && (!u.username.empty() || !u.password.empty()))
    errors.push_back("user " + name + " sets both tokenFile and username/password; only one is" +
                     " allowed");
  if (methods.size() > 1)
    errors.push_back("more than one authentication method found for " + name + " (token and " +
                     "basic auth); only one is allowed");
  if ((!u.as_uid.empty() || !u.as_groups.empty() || !u.as_extra.empty()) && u.as.empty())
    errors.push_back("user " + name + " requests uid, groups or user-extra without impersonating" +
                     " a user (as)");
}

OidcConfig build_oidc(const detail::RawUser& u) {
  auto get = [&](const char* key) {
    auto it = u.auth_provider_config.find(key);
    return it == u.auth_provider_config.end() ? std::string() : it->second;
  };
  OidcConfig o{get("id-token"), get("refresh-token"), get("idp-issuer-url"), get("client-id"),
               get("client-secret"), {}, u.origin, {}};
  if (auto data = get("idp-certificate-authority-data"); !data.empty()) {
    auto pem = text::base64_decode(data);
    if (!pem)
      throw ConfigError("kube: idp-certificate-authority-data of an oidc user in " + u.origin +
                        " is not base64; fix the kubeconfig");
    o.issuer_ca_pem = *pem;
  } else if (auto file = get("idp-certificate-authority"); !file.empty()) {
    o.issuer_ca_pem = must_read(file, "idp-certificate-authority");
  }
  return o;
}

UserConfig build_user(const detail::RawUser& u, const detail::RawCluster& c) {
  UserConfig out;
  out.token = u.token;
  out.token_file = u.token_file;
  if (out.token.empty() && !out.token_file.empty())
    out.token = trim(must_read(out.token_file, "tokenFile"));
  out.impersonate_user = u.as;
  out.impersonate_uid = u.as_uid;
  out.impersonate_groups = u.as_groups;
  out.impersonate_extra = u.as_extra;
  if (!u.cert_file.empty() || !u.cert_data.empty()) {
    out.client_cert_pem =
        u.cert_data.empty() ? must_read(u.cert_file, "client-certificate") : u.cert_data;
    out.client_key_pem = u.key_data.empty() ? must_read(u.key_file, "client-key") : u.key_data;
  }
  out.username = u.username;
  out.password = u.password;
  if (u.auth_provider) {
    out.auth_provider = *u.auth_provider;
    if (*u.auth_provider == "gcp" || *u.auth_provider == "azure")
      throw ConfigError("kube: the " + *u.auth_provider +
                        " auth plugin has been removed; use its exec credential plugin " +
                        "(gke-gcloud-auth-plugin or kubelogin) in the kubeconfig instead");
    if (*u.auth_provider != "oidc")
      throw ConfigError("kube: no auth provider found for name \"" + *u.auth_provider +
                        "\"; use an exec credential plugin instead");
    if (out.token.empty()) out.oidc = build_oidc(u);
  }
  if (u.exec) {
    out.exec = u.exec;
    out.exec->cluster_extension = c.exec_extension;
    out.exec->install_hint = u.exec_install_hint;
  }
  return out;
}

ClusterConfig build_cluster(const detail::RawCluster& c) {
  ClusterConfig out;
  out.server = c.server;
  out.ca_pem = c.ca_data.empty() && !c.ca_file.empty() ? must_read(c.ca_file, "certificate-authority")
                                                       : c.ca_data;
  out.insecure_skip_tls_verify = c.insecure;
  out.tls_server_name = c.tls_server_name;
  out.proxy_url = c.proxy_url;
  out.disable_compression = c.disable_compression;
  return out;
}

}  // namespace

namespace {

/// DirectClientConfig.ClientConfig() + ConfirmUsable() for the chosen context.
RestConfig direct_config(const Kubeconfig& k, const LoadOptions& o) {
  const std::string ctx_name = o.context.empty() ? k.current_context : o.context;
  auto ctx_it = k.contexts.find(ctx_name);
  const std::string files = files_of(k);
  if (!o.context.empty() && ctx_it == k.contexts.end())
    throw ConfigError("kube: context \"" + o.context + "\" does not exist in " + files +
                      "; pick one of `kubectl config get-contexts`");
  detail::RawContext ctx = ctx_it == k.contexts.end() ? detail::RawContext{} : ctx_it->second;
  std::vector<std::string> errors;
  if (!ctx_name.empty() && ctx_it == k.contexts.end())
    errors.push_back("context was not found for specified context: " + ctx_name);
  auto user_it = k.users.find(ctx.user);
  detail::RawUser user = user_it == k.users.end() ? detail::RawUser{} : user_it->second;
  validate_user(ctx.user, user, errors);
  // ClusterDefaults: $KUBERNETES_MASTER fills in a missing server.
  std::string master = env("KUBERNETES_MASTER");
  auto cluster_it = k.clusters.find(ctx.cluster);
  bool cluster_empty = cluster_it == k.clusters.end() && master.empty();
  detail::RawCluster cluster = cluster_it == k.clusters.end() ? detail::RawCluster{} : cluster_it->second;
  if (cluster.server.empty()) cluster.server = master;
  if (cluster_empty) {
    if (errors.empty()) throw EmptyConfig{};
    errors.push_back("no cluster is selected (context \"" + ctx_name + "\" names cluster \"" +
                     ctx.cluster + "\")");
  } else {
    validate_cluster(ctx.cluster, cluster, errors);
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "; ") + e;
    throw ConfigError("kube: invalid kubeconfig " + files + ": " + all +
                      "; fix it or choose another context with --context");
  }
  RestConfig rc;
  rc.context_name = ctx_name;
  rc.source = files;
  rc.cluster = build_cluster(cluster);
  bool has_tls_info = !rc.cluster.ca_pem.empty() || rc.cluster.insecure_skip_tls_verify ||
                      !user.cert_file.empty() || !user.cert_data.empty();
  auto url = detail::parse_server_url(rc.cluster.server, has_tls_info);
  if (!url)
    throw ConfigError("kube: server \"" + rc.cluster.server + "\" of cluster \"" + ctx.cluster +
                      "\" in " + files + " is not a URL or host:port; fix the kubeconfig");
  rc.cluster.server = url->base();
  // client-go sends user credentials only over TLS (IsConfigTransportTLS).
  if (url->scheme == "https") {
    rc.user = build_user(user, cluster);
    if (rc.user.oidc) rc.user.oidc->user_name = ctx.user;
  } else if (user_it != k.users.end()) {
    spdlog::warn("kube: server {} is plain http: user \"{}\" credentials are not sent",
                 rc.cluster.server, ctx.user);
  }
  rc.namespace_ = ctx.ns;
  return rc;
}

std::string service_account_dir() {
  std::string d = env("LPK_SERVICEACCOUNT_DIR");
  return d.empty() ? kServiceAccountDir : d;
}

bool in_cluster_possible() {
  struct stat st {};
  std::string token = service_account_dir() + "/token";
  return !env("KUBERNETES_SERVICE_HOST").empty() && !env("KUBERNETES_SERVICE_PORT").empty() &&
         ::stat(token.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

std::string in_cluster_namespace() {
  if (std::string ns = env("POD_NAMESPACE"); !ns.empty()) return ns;
  std::string error;
  if (auto ns = read_file(service_account_dir() + "/namespace", error); ns && !trim(*ns).empty())
    return trim(*ns);
  return "default";
}

}  // namespace

std::optional<RestConfig> in_cluster_config() {
  if (!in_cluster_possible()) return std::nullopt;
  const std::string dir = service_account_dir();
  RestConfig rc;
  std::string host = env("KUBERNETES_SERVICE_HOST");
  if (host.find(':') != std::string::npos) host = "[" + host + "]";  // JoinHostPort
  rc.cluster.server = "https://" + host + ":" + env("KUBERNETES_SERVICE_PORT");
  rc.user.token_file = dir + "/token";
  rc.user.token = trim(must_read(rc.user.token_file, "the service account token"));
  std::string error;
  if (auto ca = read_file(dir + "/ca.crt", error); ca && !ca->empty())
    rc.cluster.ca_pem = *ca;
  else
    spdlog::error("kube: expected to load the root CA from {}/ca.crt: {}", dir, error);
  rc.namespace_ = in_cluster_namespace();
  rc.source = "in-cluster service account (" + dir + ")";
  return rc;
}

RestConfig load_config(const LoadOptions& o) {
  Kubeconfig k = load_files(o);
  RestConfig rc;
  try {
    rc = direct_config(k, o);
  } catch (const EmptyConfig&) {
    if (auto icc = in_cluster_config()) {
      if (!o.namespace_override.empty()) icc->namespace_ = o.namespace_override;
      return *icc;
    }
    std::string why = k.files.empty() ? "no kubeconfig file found (" + searched(o) + ")"
                      : k.current_context.empty() && o.context.empty()
                          ? files_of(k) + " sets no current-context"
                          : files_of(k) + " selects no cluster";
    throw ConfigError("kube: no cluster configured: " + why +
                      ", and this is not a pod; pass --kubeconfig or --context, or set KUBECONFIG");
  }
  // DeferredLoadingClientConfig.Namespace(): an implicit namespace defers to the pod's.
  if (!o.namespace_override.empty())
    rc.namespace_ = o.namespace_override;
  else if (rc.namespace_.empty())
    rc.namespace_ = in_cluster_possible() ? in_cluster_namespace() : "default";
  return rc;
}

}  // namespace lpk::kube
