#pragma once
// One kubeconfig file as client-go reads it (clientcmd/api/v1 types + LoadFromFile + ResolveLocalPaths),
// and the merge of several (loader.go: the first file that names an entry wins the whole entry;
// the first file that sets current-context wins). Pure: text in, structs out.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kube/config.hpp"

namespace lpk::kube::detail {

struct RawCluster {
  std::string origin;  ///< the file that defined it
  std::string server, ca_file, ca_data, tls_server_name, proxy_url;
  bool insecure = false, disable_compression = false;
  nlohmann::json exec_extension;  ///< extensions[name == client.authentication.k8s.io/exec]
};

struct RawUser {
  std::string origin;
  std::string cert_file, cert_data, key_file, key_data, token, token_file, username, password;
  std::string as, as_uid;
  std::vector<std::string> as_groups;
  std::map<std::string, std::vector<std::string>> as_extra;
  std::optional<ExecConfig> exec;
  std::string exec_install_hint;
  std::optional<std::string> auth_provider;  ///< its name
  std::map<std::string, std::string> auth_provider_config;
};

struct RawContext {
  std::string origin, cluster, user, ns;
};

struct Kubeconfig {
  std::vector<std::string> files;  ///< the files merged into it, in order
  std::string current_context;
  std::map<std::string, RawCluster> clusters;
  std::map<std::string, RawUser> users;
  std::map<std::string, RawContext> contexts;
};

/// Parses one file's text. Relative file references (certificate-authority, client-certificate,
/// client-key, tokenFile, exec.command containing '/') are made absolute against the directory
/// of `path`. -data fields are base64-decoded. Throws ConfigError naming `path` and the field.
Kubeconfig parse_kubeconfig(std::string_view text, const std::string& path);

/// Merges `next` into `into` (which came from earlier files): names already present keep their
/// entry, current-context keeps the first non-empty value.
void merge_kubeconfig(Kubeconfig& into, Kubeconfig next);

}  // namespace lpk::kube::detail
