#pragma once
// kubeconfig loading as client-go does it (clientcmd loader + client_config): KUBECONFIG merge
// where the first file wins, paths relative to the defining file, validation, context and
// namespace choice, and the in-cluster fallback.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lpk::kube {

struct LoadOptions {
  std::string kubeconfig{};  ///< --kubeconfig; empty = $KUBECONFIG, else ~/.kube/config
  std::string context{};     ///< --context; empty = current-context
  std::string namespace_override{};  ///< -n/--namespace; empty = the context's, else "default"
};

struct ExecConfig {
  std::string api_version;  ///< client.authentication.k8s.io/v1 or /v1beta1
  std::string command;      ///< resolved against the kubeconfig's dir when it contains a '/'
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  bool provide_cluster_info = false;
  std::string interactive_mode;   ///< Never | IfAvailable | Always (v1beta1 default IfAvailable)
  nlohmann::json cluster_extension;  ///< extensions[client.authentication.k8s.io/exec], or null
  std::string install_hint;          ///< shown when the command is not found
};

struct ClusterConfig {
  std::string server;  ///< https://host:port[/prefix]; the prefix is kept on every API path
  std::string ca_pem;  ///< empty = system roots
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  ///< SNI and the name verified in the server certificate
  std::string proxy_url;        ///< empty = HTTPS_PROXY/HTTP_PROXY/NO_PROXY from the environment
  bool disable_compression = false;
};

/// The legacy `auth-provider: {name: oidc}` entry (client-go plugin/pkg/client/auth/oidc): an
/// id-token used as the bearer token and refreshed with the refresh-token when it expires or the
/// server answers 401; the new tokens are written back into the kubeconfig file.
struct OidcConfig {
  std::string id_token, refresh_token;
  std::string issuer_url;  ///< idp-issuer-url: discovery is <issuer>/.well-known/openid-configuration
  std::string client_id, client_secret;
  std::string issuer_ca_pem;  ///< idp-certificate-authority(-data); empty = system roots
  std::string kubeconfig;     ///< the file that defined the user: refreshed tokens go there
  std::string user_name;      ///< the entry under users: in that file
};

struct UserConfig {
  std::string client_cert_pem, client_key_pem;
  std::string token;       ///< static bearer token (wins over token_file)
  std::string token_file;  ///< absolute path, re-read at most once a minute
  std::string username, password;
  std::string impersonate_user, impersonate_uid;
  std::vector<std::string> impersonate_groups;
  std::map<std::string, std::vector<std::string>> impersonate_extra;
  std::optional<ExecConfig> exec;
  std::string auth_provider;  ///< name of an auth-provider entry, if any (only reported)
  std::optional<OidcConfig> oidc;  ///< auth-provider oidc, unless a token is configured too
};

struct RestConfig {
  ClusterConfig cluster;
  UserConfig user;
  std::string namespace_ = "default";
  std::string context_name;  ///< empty for the in-cluster configuration
  std::string source;        ///< which file(s) it came from, for messages
};

/// Every problem with the configuration; what() is one line: what is wrong + what to do.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// client-go's loading rules (see /work/shared/k8s-notes.md §2). Reads files and the
/// environment; throws ConfigError.
///
/// In-cluster: when no kubeconfig gives a usable config and KUBERNETES_SERVICE_HOST/PORT are set
/// and the service account token exists. The service account dir is
/// /var/run/secrets/kubernetes.io/serviceaccount unless $LPK_SERVICEACCOUNT_DIR names another
/// (for tests).
RestConfig load_config(const LoadOptions& options);

/// The in-cluster configuration alone, or nullopt when it is not possible here.
std::optional<RestConfig> in_cluster_config();

}  // namespace lpk::kube
