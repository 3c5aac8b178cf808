#include "kube/detail/kubeconfig.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "kube/text.hpp"

namespace lpk::kube::detail {

namespace {

namespace fs = std::filesystem;

/// Field access for one file; every error names the file and the field, as Go's decoder does.
class Reader {
 public:
  Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError("kube: kubeconfig " + path_ + ": " + what +
                      "; fix the file or point --kubeconfig/KUBECONFIG elsewhere");
  }

  // sigs.k8s.io/yaml turns any scalar into a string field (yes, 123, true all read as text).
  std::string str(const YAML::Node& map, const char* key, const std::string& where) const {
    YAML::Node n = map[key];
    if (!n || n.IsNull()) return {};
    if (!n.IsScalar()) fail(where + "." + key + " must be a string");
    return n.Scalar();
  }

  bool boolean(const YAML::Node& map, const char* key, const std::string& where) const {
    YAML::Node n = map[key];
    if (!n || n.IsNull()) return false;
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
      fail(where + "." + key + " must be true or false, not '" + (n.IsScalar() ? n.Scalar() : "") +
           "'");
    return v;
  }

  std::string data(const YAML::Node& map, const char* key, const std::string& where) const {
    std::string b64 = str(map, key, where);
    if (b64.empty()) return {};
    auto v = text::base64_decode(b64);
    if (!v) fail(where + "." + key + " is not valid base64");
    return *v;
  }

  std::vector<std::string> strings(const YAML::Node& map, const char* key,
                                   const std::string& where) const {
    std::vector<std::string> out;
    YAML::Node n = map[key];
    if (!n || n.IsNull()) return out;
    if (!n.IsSequence()) fail(where + "." + key + " must be a list");
    for (const auto& item : n) {
      if (!item.IsScalar()) fail(where + "." + key + " must be a list of strings");
      out.push_back(item.Scalar());
    }
    return out;
  }

  YAML::Node map_or_null(const YAML::Node& parent, const char* key, const std::string& where) const {
    YAML::Node n = parent[key];
    if (!n || n.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!n.IsMap()) fail(where + "." + key + " must be a mapping");
    return n;
  }

  /// Absolute path against the file's directory (ResolveLocalPaths).
  std::string resolve(std::string p) const {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (fs::absolute(fs::path(path_)).parent_path() / p).lexically_normal().string();
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

nlohmann::json to_json(const YAML::Node& n, int depth = 0) {
  if (depth > 64) throw ConfigError("nested too deeply");
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      auto out = nlohmann::json::object();
      for (const auto& kv : n) out[kv.first.Scalar()] = to_json(kv.second, depth + 1);
      return out;
    }
    case YAML::NodeType::Sequence: {
      auto out = nlohmann::json::array();
      for (const auto& item : n) out.push_back(to_json(item, depth + 1));
      return out;
    }
    case YAML::NodeType::Scalar: {
      if (n.Tag() == "!") return n.Scalar();  // quoted: always a string
      bool b;
      if (n.Scalar() == "true" || n.Scalar() == "false") return YAML::convert<bool>::decode(n, b) && b;
      long long i;
      if (YAML::convert<long long>::decode(n, i)) return i;
      double d;
      if (YAML::convert<double>::decode(n, d)) return d;
      if (n.Scalar() == "~" || n.Scalar() == "null") return nullptr;
      return n.Scalar();
    }
    default:
      return nullptr;
  }
}

/// Each named list (clusters, users, contexts) becomes a map; a name twice in one file is an
/// error, as in client-go's v1 conversion.
template <class Fn>
void for_each_named(const Reader& r, const YAML::Node& root, const char* list, const char* inner,
                    Fn&& fn) {
  YAML::Node n = root[list];
  if (!n || n.IsNull()) return;
  if (!n.IsSequence()) r.fail(std::string(list) + " must be a list");
  std::map<std::string, bool> seen;
  for (const auto& item : n) {
    if (!item.IsMap()) r.fail(std::string(list) + " entries must be mappings");
    std::string name = r.str(item, "name", list);
    if (seen[name]) r.fail("duplicate name \"" + name + "\" in " + list);
    seen[name] = true;
    fn(name, r.map_or_null(item, inner, std::string(list) + "[" + name + "]"));
  }
}

RawCluster read_cluster(const Reader& r, const YAML::Node& c, const std::string& w) {
  RawCluster out;
  out.origin = r.path();
  out.server = r.str(c, "server", w);
  out.ca_file = r.resolve(r.str(c, "certificate-authority", w));
  out.ca_data = r.data(c, "certificate-authority-data", w);
  out.insecure = r.boolean(c, "insecure-skip-tls-verify", w);
  out.tls_server_name = r.str(c, "tls-server-name", w);
  out.proxy_url = r.str(c, "proxy-url", w);
  out.disable_compression = r.boolean(c, "disable-compression", w);
  if (YAML::Node ext = c["extensions"]; ext && ext.IsSequence()) {
    for (const auto& e : ext)
      if (e.IsMap() && r.str(e, "name", w) == "client.authentication.k8s.io/exec" && e["extension"])
        out.exec_extension = to_json(e["extension"]);
  }
  return out;
}

ExecConfig read_exec(const Reader& r, const YAML::Node& e, const std::string& w, RawUser& user) {
  ExecConfig x;
  x.api_version = r.str(e, "apiVersion", w);
  x.command = r.str(e, "command", w);
  if (x.command.find('/') != std::string::npos) x.command = r.resolve(x.command);
  x.args = r.strings(e, "args", w);
  if (YAML::Node env = e["env"]; env && !env.IsNull()) {
    if (!env.IsSequence()) r.fail(w + ".env must be a list of {name, value}");
    for (const auto& v : env) {
      if (!v.IsMap()) r.fail(w + ".env must be a list of {name, value}");
      x.env.emplace_back(r.str(v, "name", w + ".env"), r.str(v, "value", w + ".env"));
    }
  }
  x.provide_cluster_info = r.boolean(e, "provideClusterInfo", w);
  x.interactive_mode = r.str(e, "interactiveMode", w);
  // SetDefaults_ExecConfig: only the older API versions default to IfAvailable.
  if (x.interactive_mode.empty() && (x.api_version == "client.authentication.k8s.io/v1beta1" ||
                                     x.api_version == "client.authentication.k8s.io/v1alpha1"))
    x.interactive_mode = "IfAvailable";
  user.exec_install_hint = r.str(e, "installHint", w);
  return x;
}

RawUser read_user(const Reader& r, const YAML::Node& u, const std::string& w) {
  RawUser out;
  out.origin = r.path();
  out.cert_file = r.resolve(r.str(u, "client-certificate", w));
  out.cert_data = r.data(u, "client-certificate-data", w);
  out.key_file = r.resolve(r.str(u, "client-key", w));
  out.key_data = r.data(u, "client-key-data", w);
  out.token = r.str(u, "token", w);
  out.token_file = r.resolve(r.str(u, "tokenFile", w));
  out.username = r.str(u, "username", w);
  out.password = r.str(u, "password", w);
  out.as = r.str(u, "as", w);
  out.as_uid = r.str(u, "as-uid", w);
  out.as_groups = r.strings(u, "as-groups", w);
  YAML::Node extra = r.map_or_null(u, "as-user-extra", w);
  for (const auto& kv : extra) out.as_extra[kv.first.Scalar()] = r.strings(extra, kv.first.Scalar().c_str(), w + ".as-user-extra");
  if (YAML::Node ap = u["auth-provider"]; ap && !ap.IsNull()) {
    if (!ap.IsMap()) r.fail(w + ".auth-provider must be a mapping");
    out.auth_provider = r.str(ap, "name", w + ".auth-provider");
    YAML::Node cfg = r.map_or_null(ap, "config", w + ".auth-provider");
    for (const auto& kv : cfg)
      out.auth_provider_config[kv.first.Scalar()] = kv.second.IsScalar() ? kv.second.Scalar() : "";
  }
  if (YAML::Node e = u["exec"]; e && !e.IsNull()) {
    if (!e.IsMap()) r.fail(w + ".exec must be a mapping");
    out.exec = read_exec(r, e, w + ".exec", out);
  }
  return out;
}

}  // namespace

Kubeconfig parse_kubeconfig(std::string_view text, const std::string& path) {
  Reader r(path);
  Kubeconfig out;
  out.files.push_back(path);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    r.fail("not valid YAML (" + e.msg + " at line " + std::to_string(e.mark.line + 1) + ")");
  }
  if (!root || root.IsNull()) return out;  // an empty file is an empty config
  if (!root.IsMap()) r.fail("the top level must be a mapping (apiVersion, kind, clusters, ...)");
  try {
    out.current_context = r.str(root, "current-context", "config");
    for_each_named(r, root, "clusters", "cluster", [&](const std::string& name, const YAML::Node& c) {
      out.clusters[name] = read_cluster(r, c, "clusters[" + name + "]");
    });
    for_each_named(r, root, "users", "user", [&](const std::string& name, const YAML::Node& u) {
      out.users[name] = read_user(r, u, "users[" + name + "]");
    });
    for_each_named(r, root, "contexts", "context", [&](const std::string& name, const YAML::Node& c) {
      std::string w = "contexts[" + name + "]";
      out.contexts[name] = {path, r.str(c, "cluster", w), r.str(c, "user", w), r.str(c, "namespace", w)};
    });
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {  // yaml-cpp conversions, nesting limits
    r.fail(std::string("unreadable (") + e.what() + ")");
  }
  return out;
}

void merge_kubeconfig(Kubeconfig& into, Kubeconfig next) {
  into.files.insert(into.files.end(), next.files.begin(), next.files.end());
  if (into.current_context.empty()) into.current_context = std::move(next.current_context);
  into.clusters.merge(next.clusters);  // std::map::merge keeps existing keys: first file wins
  into.users.merge(next.users);
  into.contexts.merge(next.contexts);
}

}  // namespace lpk::kube::detail
