#include "tools/kubesim/runtime/volumes.hpp"

#include <chrono>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

#include "tools/kubesim/certs.hpp"
#include "tools/kubesim/runtime/env.hpp"
#include "kube/text.hpp"

namespace lpk::kubesim {

namespace fs = std::filesystem;

namespace {

struct FileData {
  std::string content;
  int mode;
};
// Relative path -> file, as the atomic writer's payload.
using Payload = std::map<std::string, FileData>;

void write_file(const fs::path& p, const std::string& data, int mode) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << data;
  f.close();
  fs::permissions(p, static_cast<fs::perms>(mode & 0777));
}

// The atomic writer's layout: ..<timestamp>.<random>/ holds the files, ..data points at it,
// and each top-level name is a symlink through ..data.
void write_atomic(const fs::path& dir, const Payload& payload) {
  fs::create_directories(dir);
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[64];
  std::strftime(stamp, sizeof stamp, "..%Y_%m_%d_%H_%M_%S.", &tm);
  static std::mt19937 rng{std::random_device{}()};
  std::string ts_dir = stamp + std::to_string(rng() % 1000000000);
  fs::create_directories(dir / ts_dir);
  std::set<std::string> top;
  for (const auto& [path, f] : payload) {
    write_file(dir / ts_dir / path, f.content, f.mode);
    top.insert(fs::path(path).begin()->string());
  }
  fs::create_directory_symlink(ts_dir, dir / "..data");
  for (const auto& name : top) fs::create_symlink(fs::path("..data") / name, dir / name);
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

void add_keyed(Payload& out, const json& src, bool secret, int default_mode,
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
    for (const auto& [k, v] : all) out[k] = {v, mode};
    return;
  }
  for (const auto& item : src["items"]) {
    std::string key = item.value("key", "");
    bool found = false;
    for (const auto& [k, v] : all) {
      if (k != key) continue;
      out[item.value("path", key)] = {v, item.value("mode", mode)};
      found = true;
    }
    if (!found && !src.value("optional", false)) {
      throw std::runtime_error(secret ? "references non-existent secret key: " + key
                                      : "configmap references non-existent config key: " + key);
    }
  }
}

void add_downward(Payload& out, const json& src, const json& pod, int mode) {
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
    out[item.value("path", "value")] = {value, item.value("mode", mode)};
  }
}

void add_projected(Payload& out, const json& src, const json& pod, const VolumeContext& ctx) {
  int mode = src.value("defaultMode", 0644);
  for (const auto& s : src.value("sources", json::array())) {
    if (s.contains("configMap")) add_keyed(out, s["configMap"], false, mode, ctx);
    if (s.contains("secret")) add_keyed(out, s["secret"], true, mode, ctx);
    if (s.contains("downwardAPI")) add_downward(out, s["downwardAPI"], pod, mode);
    if (s.contains("serviceAccountToken")) {
      const json& t = s["serviceAccountToken"];
      std::string token = ctx.token ? ctx.token(t.value("audience", ""),
                                                t.value("expirationSeconds", int64_t{3600}))
                                    : "";
      out[t.value("path", "token")] = {token, mode};
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, fs::path>> materialize_volumes(const json& pod,
                                                                  const fs::path& dir,
                                                                  const VolumeContext& ctx) {
  std::vector<std::pair<std::string, fs::path>> out;
  for (const auto& v : pod["spec"].value("volumes", json::array())) {
    std::string name = v.value("name", "");
    fs::path d = dir / name;
    if (v.contains("hostPath")) {
      out.emplace_back(name, fs::path(v["hostPath"].value("path", "/")));
      continue;
    }
    Payload payload;
    bool atomic = true;
    if (v.contains("configMap")) {
      add_keyed(payload, v["configMap"], false, 0644, ctx);
    } else if (v.contains("secret")) {
      add_keyed(payload, v["secret"], true, 0644, ctx);
    } else if (v.contains("downwardAPI")) {
      add_downward(payload, v["downwardAPI"], pod, v["downwardAPI"].value("defaultMode", 0644));
    } else if (v.contains("projected")) {
      add_projected(payload, v["projected"], pod, ctx);
    } else {
      atomic = false;  // emptyDir and the rest: a plain directory
    }
    std::error_code ec;
    fs::remove_all(d, ec);  // a retry after a failed start writes afresh
    if (atomic)
      write_atomic(d, payload);
    else
      fs::create_directories(d);
    out.emplace_back(name, d);
  }
  return out;
}

std::vector<Mount> container_mounts(const json& container,
                                    const std::vector<std::pair<std::string, fs::path>>& vols) {
  std::vector<Mount> out;
  for (const auto& vm : container.value("volumeMounts", json::array())) {
    std::string name = vm.value("name", "");
    for (const auto& [vname, path] : vols) {
      if (vname != name) continue;
      fs::path src = path;
      if (!vm.value("subPath", "").empty()) src /= vm["subPath"].get<std::string>();
      out.push_back({src, vm.value("mountPath", ""), vm.value("readOnly", false)});
    }
  }
  return out;
}

}  // namespace lpk::kubesim
