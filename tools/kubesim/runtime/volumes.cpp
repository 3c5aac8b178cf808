#include "tools/kubesim/runtime/volumes.hpp"

#include <fstream>
#include <stdexcept>

#include "tools/kubesim/certs.hpp"
#include "tools/kubesim/runtime/env.hpp"
#include "kube/text.hpp"

namespace lpk::kubesim {

namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& data, int mode) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << data;
  f.close();
  fs::permissions(p, static_cast<fs::perms>(mode & 0777));
}

// The key -> content map of a configMap or secret (secret values decoded).
std::vector<std::pair<std::string, std::string>> entries(const json& obj, bool secret) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* f : {"data", "binaryData"}) {
    if (!obj.contains(f) || !obj[f].is_object()) continue;
    for (const auto& [k, v] : obj[f].items()) {
      std::string val = v.get<std::string>();
      if (secret || std::string(f) == "binaryData") {
        val = text::base64_decode(val).value_or("");
      }
      out.emplace_back(k, val);
    }
  }
  return out;
}

void write_keyed(const fs::path& dir, const json& src, bool secret, int default_mode,
                 const VolumeContext& ctx) {
  std::string name =
      secret ? src.value("secretName", src.value("name", "")) : src.value("name", "");
  auto obj = ctx.lookup(secret ? "secrets" : "configmaps", name);
  if (!obj) {
    if (src.value("optional", false)) return;
    throw std::runtime_error(std::string(secret ? "secret" : "configmap") + " \"" + name +
                             "\" not found");
  }
  auto all = entries(*obj, secret);
  int mode = src.value("defaultMode", default_mode);
  if (!src.contains("items")) {
    for (const auto& [k, v] : all) write_file(dir / k, v, mode);
    return;
  }
  for (const auto& item : src["items"]) {
    std::string key = item.value("key", "");
    for (const auto& [k, v] : all) {
      if (k == key) write_file(dir / item.value("path", key), v, item.value("mode", mode));
    }
  }
}

void write_downward(const fs::path& dir, const json& src, const json& pod, int mode) {
  for (const auto& item : src.value("items", json::array())) {
    std::string value;
    if (item.contains("fieldRef")) {
      std::string path = item["fieldRef"].value("fieldPath", "");
      if (path == "metadata.labels" || path == "metadata.annotations") {
        json map = pod["metadata"].value(path.substr(9), json::object());
        for (const auto& [k, v] : map.items()) value += k + "=" + json(v).dump() + "\n";
      } else {
        value = pod_field(pod, path);
      }
    } else if (item.contains("resourceFieldRef")) {
      std::string cname = item["resourceFieldRef"].value("containerName", "");
      for (const auto& c : pod["spec"]["containers"]) {
        if (c.value("name", "") == cname)
          value = resource_field(c, item["resourceFieldRef"], {{"cpu", "2"}, {"memory", "4Gi"}});
      }
    }
    write_file(dir / item.value("path", "value"), value, item.value("mode", mode));
  }
}

void write_projected(const fs::path& dir, const json& src, const json& pod,
                     const VolumeContext& ctx) {
  int mode = src.value("defaultMode", 0644);
  for (const auto& s : src.value("sources", json::array())) {
    if (s.contains("configMap")) write_keyed(dir, s["configMap"], false, mode, ctx);
    if (s.contains("secret")) write_keyed(dir, s["secret"], true, mode, ctx);
    if (s.contains("downwardAPI")) write_downward(dir, s["downwardAPI"], pod, mode);
    if (s.contains("serviceAccountToken")) {
      write_file(dir / s["serviceAccountToken"].value("path", "token"), ctx.token, 0600 | mode);
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, fs::path>> materialize_volumes(const json& pod,
                                                                  const fs::path& dir,
                                                                  const VolumeContext& ctx) {
  std::vector<std::pair<std::string, fs::path>> out;
  json volumes = pod["spec"].value("volumes", json::array());
  // Every pod gets the service-account volume a real cluster injects (kube-api-access-*).
  json sa = json::parse(R"({"name":"kube-api-access","projected":{"sources":[
    {"serviceAccountToken":{"path":"token","expirationSeconds":3607}},
    {"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},
    {"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"fieldPath":"metadata.namespace"}}]}}]}})");
  volumes.push_back(sa);
  for (const auto& v : volumes) {
    std::string name = v.value("name", "");
    fs::path d = dir / name;
    fs::create_directories(d);
    if (v.contains("hostPath")) {
      out.emplace_back(name, fs::path(v["hostPath"].value("path", "/")));
      continue;
    }
    if (v.contains("configMap")) write_keyed(d, v["configMap"], false, 0644, ctx);
    if (v.contains("secret")) write_keyed(d, v["secret"], true, 0644, ctx);
    if (v.contains("downwardAPI")) write_downward(d, v["downwardAPI"], pod, 0644);
    if (v.contains("projected")) write_projected(d, v["projected"], pod, ctx);
    out.emplace_back(name, d);
  }
  return out;
}

std::vector<Mount> container_mounts(const json& container,
                                    const std::vector<std::pair<std::string, fs::path>>& vols) {
  std::vector<Mount> out;
  bool has_sa = false;
  for (const auto& vm : container.value("volumeMounts", json::array())) {
    std::string name = vm.value("name", "");
    for (const auto& [vname, path] : vols) {
      if (vname != name) continue;
      fs::path src = path;
      if (!vm.value("subPath", "").empty()) src /= vm["subPath"].get<std::string>();
      std::string target = vm.value("mountPath", "");
      if (target == "/var/run/secrets/kubernetes.io/serviceaccount") has_sa = true;
      out.push_back({src, target, vm.value("readOnly", false)});
    }
  }
  if (!has_sa) {
    for (const auto& [vname, path] : vols) {
      if (vname == "kube-api-access") {
        out.push_back({path, "/var/run/secrets/kubernetes.io/serviceaccount", true});
      }
    }
  }
  return out;
}

}  // namespace lpk::kubesim
