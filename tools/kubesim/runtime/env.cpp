#include "tools/kubesim/runtime/env.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>

#include "tools/kubesim/certs.hpp"
#include "kube/envvars.hpp"
#include "kube/objects.hpp"
#include "kube/text.hpp"

namespace lpk::kubesim {

std::string expand_vars(const std::string& s,
                        const std::function<std::optional<std::string>(const std::string&)>& get) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '$' || i + 1 >= s.size()) {
      out += s[i];
      continue;
    }
    char n = s[i + 1];
    if (n == '$') {
      out += '$';
      ++i;
    } else if (n == '(') {
      size_t close = s.find(')', i + 2);
      if (close == std::string::npos) {
        out += s.substr(i);
        break;
      }
      std::string name = s.substr(i + 2, close - i - 2);
      auto v = get(name);
      out += v ? *v : "$(" + name + ")";
      i = close;
    } else {
      out += '$';
    }
  }
  return out;
}

namespace {

bool valid_env_name(const std::string& n) {
  static const std::regex kName("[-._a-zA-Z][-._a-zA-Z0-9]*");
  return std::regex_match(n, kName);
}

std::string decoded(const json& obj, const std::string& key, bool secret) {
  if (secret) return text::base64_decode(obj["data"][key].get<std::string>()).value_or("");
  if (obj.contains("data") && obj["data"].contains(key)) return obj["data"][key];
  return text::base64_decode(obj["binaryData"][key].get<std::string>()).value_or("");
}

bool has_key(const json& obj, const std::string& key) {
  for (const char* f : {"data", "binaryData"}) {
    if (obj.contains(f) && obj[f].is_object() && obj[f].contains(key)) return true;
  }
  return false;
}

std::optional<std::string> key_ref(const json& ref, bool secret, const EnvInputs& in) {
  std::string name = ref.value("name", "");
  std::string key = ref.value("key", "");
  bool optional = ref.value("optional", false);
  auto obj = in.lookup(secret ? "secrets" : "configmaps", name);
  if (!obj) {
    if (optional) return std::nullopt;
    throw EnvError(std::string(secret ? "secret" : "configmap") + " \"" + name + "\" not found");
  }
  if (!has_key(*obj, key)) {
    if (optional) return std::nullopt;
    throw EnvError("couldn't find key " + key + " in " + (secret ? "Secret" : "ConfigMap") + " " +
                   name);
  }
  return decoded(*obj, key, secret);
}

void set_var(EnvList& env, const std::string& k, const std::string& v) {
  for (auto& [name, value] : env) {
    if (name == k) {
      value = v;
      return;
    }
  }
  env.emplace_back(k, v);
}

void add_env_from(EnvList& env, const json& source, const EnvInputs& in) {
  bool secret = source.contains("secretRef");
  const json& ref = secret ? source["secretRef"] : source.value("configMapRef", json::object());
  std::string name = ref.value("name", "");
  auto obj = in.lookup(secret ? "secrets" : "configmaps", name);
  if (!obj) {
    if (ref.value("optional", false)) return;
    throw EnvError(std::string(secret ? "secret" : "configmap") + " \"" + name + "\" not found");
  }
  std::string prefix = source.value("prefix", "");
  for (const char* f : {"data", "binaryData"}) {
    if (!obj->contains(f) || !(*obj)[f].is_object()) continue;
    for (const auto& [k, v] : (*obj)[f].items()) {
      std::string var = prefix + k;
      if (valid_env_name(var)) set_var(env, var, decoded(*obj, k, secret));
    }
  }
}

}  // namespace

EnvList service_link_env(const std::vector<json>& services) {
  EnvList env;
  for (const auto& s : services) {
    std::string ip = s["spec"].value("clusterIP", "");
    if (ip.empty() || ip == "None") continue;
    auto name = kube::text_of(kube::field(s["metadata"], "name"));
    for (auto& var : kube::service_link_variables(name, ip, kube::service_ports(s))) {
      env.push_back(std::move(var));
    }
  }
  return env;
}

EnvList container_env(const json& pod, const json& container, const EnvInputs& in) {
  EnvList env;
  EnvList svc_env = service_link_env(in.services);
  for (const auto& src : container.value("envFrom", json::array())) add_env_from(env, src, in);
  auto get = [&](const std::string& name) -> std::optional<std::string> {
    for (const auto& [k, v] : env) {
      if (k == name) return v;
    }
    for (const auto& [k, v] : svc_env) {
      if (k == name) return v;
    }
    return std::nullopt;
  };
  for (const auto& e : container.value("env", json::array())) {
    std::string name = e.value("name", "");
    if (e.contains("valueFrom")) {
      const json& vf = e["valueFrom"];
      std::optional<std::string> v;
      if (vf.contains("configMapKeyRef"))
        v = key_ref(vf["configMapKeyRef"], false, in);
      else if (vf.contains("secretKeyRef"))
        v = key_ref(vf["secretKeyRef"], true, in);
      else if (vf.contains("fieldRef"))
        v = pod_field(pod, vf["fieldRef"].value("fieldPath", ""));
      else if (vf.contains("resourceFieldRef")) {
        v = resource_field(container, vf["resourceFieldRef"], in.allocatable);
      }
      if (v) set_var(env, name, *v);
    } else {
      set_var(env, name, expand_vars(e.value("value", ""), get));
    }
  }
  for (const auto& [k, v] : svc_env) {
    bool set = std::any_of(env.begin(), env.end(), [&](auto& p) { return p.first == k; });
    if (!set) env.emplace_back(k, v);
  }
  return env;
}

std::string pod_field(const json& pod, const std::string& path) {
  static const std::regex kMapRef(R"(metadata\.(labels|annotations)\['(.*)'\])");
  std::smatch m;
  const json& meta = pod["metadata"];
  if (std::regex_match(path, m, kMapRef)) {
    json map = meta.value(m[1].str(), json::object());
    return map.value(m[2].str(), "");
  }
  const json& st = pod.value("status", json::object());
  auto join_ips = [](const json& list) {
    std::string s;
    for (const auto& x : list) s += (s.empty() ? "" : ",") + x.value("ip", "");
    return s;
  };
  if (path == "metadata.name") return meta.value("name", "");
  if (path == "metadata.namespace") return meta.value("namespace", "");
  if (path == "metadata.uid") return meta.value("uid", "");
  if (path == "spec.nodeName") return pod["spec"].value("nodeName", "");
  if (path == "spec.serviceAccountName") return pod["spec"].value("serviceAccountName", "default");
  if (path == "status.hostIP") return st.value("hostIP", "");
  if (path == "status.podIP") return st.value("podIP", "");
  if (path == "status.hostIPs") return join_ips(st.value("hostIPs", json::array()));
  if (path == "status.podIPs") return join_ips(st.value("podIPs", json::array()));
  throw EnvError("unsupported fieldPath: " + path);
}

std::optional<double> parse_quantity(const std::string& q) {
  static const std::regex kQ(R"(([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?)");
  std::smatch m;
  if (!std::regex_match(q, m, kQ)) return std::nullopt;
  double v = std::atof(m[1].str().c_str());
  static const std::map<std::string, double> kMul = {{"", 1},
                                                     {"m", 1e-3},
                                                     {"k", 1e3},
                                                     {"M", 1e6},
                                                     {"G", 1e9},
                                                     {"T", 1e12},
                                                     {"Ki", 1024.0},
                                                     {"Mi", 1048576.0},
                                                     {"Gi", 1073741824.0},
                                                     {"Ti", 1099511627776.0}};
  return v * kMul.at(m[2].str());
}

std::string resource_field(const json& container, const json& ref,
                           const std::map<std::string, std::string>& allocatable) {
  std::string res = ref.value("resource", "");
  size_t dot = res.find('.');
  if (dot == std::string::npos) throw EnvError("unsupported resource: " + res);
  std::string kind = res.substr(0, dot), name = res.substr(dot + 1);
  const json& resources = container.value("resources", json::object());
  std::string q;
  if (resources.contains(kind) && resources[kind].contains(name))
    q = resources[kind][name];
  else if (kind == "limits" && allocatable.count(name))
    q = allocatable.at(name);
  else if (kind == "requests")
    q = "0";
  else
    throw EnvError("unsupported resource: " + res);
  json div = ref.value("divisor", json("1"));
  auto value = parse_quantity(q);
  auto divisor = parse_quantity(div.is_string() ? div.get<std::string>() : div.dump());
  if (!value || !divisor || *divisor == 0) throw EnvError("invalid quantity in " + res);
  return std::to_string(static_cast<long long>(std::ceil(*value / *divisor - 1e-9)));
}

EnvList with_image_env(const EnvList& image, EnvList container) {
  EnvList out = image;
  for (auto& [name, value] : container) {
    auto same =
        std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == name; });
    if (same != out.end())
      same->second = std::move(value);
    else
      out.emplace_back(name, std::move(value));
  }
  return out;
}

}  // namespace lpk::kubesim
