#include "tools/kubesim/runtime/volumes.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
  bool operator==(const FileData&) const = default;
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
std::string write_timestamped(const fs::path& dir, const Payload& payload) {
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
  for (const auto& [path, f] : payload) write_file(dir / ts_dir / path, f.content, f.mode);
  return ts_dir;
}

std::set<std::string> top_level(const Payload& payload) {
  std::set<std::string> top;
  for (const auto& [path, f] : payload) top.insert(fs::path(path).begin()->string());
  return top;
}

void write_atomic(const fs::path& dir, const Payload& payload) {
  auto ts_dir = write_timestamped(dir, payload);
  fs::create_directory_symlink(ts_dir, dir / "..data");
  for (const auto& name : top_level(payload)) {
    fs::create_symlink(fs::path("..data") / name, dir / name);
  }
}

// What `dir` publishes now: every regular file under ..data, by its path inside the volume.
Payload published(const fs::path& dir) {
  Payload out;
  std::error_code ec;
  fs::path data = dir / "..data";
  for (auto it = fs::recursive_directory_iterator(data, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int mode = int(fs::status(it->path()).permissions() & fs::perms::mask);
    out[fs::relative(it->path(), data).string()] = {std::move(content), mode};
  }
  return out;
}

// pkg/volume/util/atomic_writer.go: the new data in a new directory, ..data swapped to it by
// rename(2) (a reader through ..data sees the old set or the new one, never a mix), the
// top-level links brought in line, then the old directory removed.
void republish(const fs::path& dir, const Payload& old_payload, const Payload& payload) {
  auto old_dir = fs::read_symlink(dir / "..data");
  auto ts_dir = write_timestamped(dir, payload);
  std::error_code ec;
  fs::remove(dir / "..data_tmp", ec);
  fs::create_directory_symlink(ts_dir, dir / "..data_tmp");
  fs::rename(dir / "..data_tmp", dir / "..data");
  auto now = top_level(payload);
  for (const auto& name : now) {
    if (!fs::is_symlink(dir / name)) fs::create_symlink(fs::path("..data") / name, dir / name);
  }
  for (const auto& name : top_level(old_payload)) {
    if (!now.contains(name)) fs::remove(dir / name, ec);
  }
  fs::remove_all(dir / old_dir, ec);
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

// Path in the volume -> expirationSeconds, of each projected service-account token.
using TokenPaths = std::map<std::string, int64_t>;

void add_projected(Payload& out, const json& src, const json& pod, const VolumeContext& ctx,
                   TokenPaths& tokens) {
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
      tokens[t.value("path", "token")] = t.value("expirationSeconds", int64_t{3600});
    }
  }
}

// The files of an atomic-writer volume (configMap, secret, downwardAPI, projected); nullopt
// for the others (emptyDir, hostPath...). Throws for a missing non-optional object.
std::optional<Payload> payload_of(const json& v, const json& pod, const VolumeContext& ctx,
                                  TokenPaths& tokens) {
  Payload payload;
  if (v.contains("configMap")) {
    add_keyed(payload, v["configMap"], false, 0644, ctx);
  } else if (v.contains("secret")) {
    add_keyed(payload, v["secret"], true, 0644, ctx);
  } else if (v.contains("downwardAPI")) {
    add_downward(payload, v["downwardAPI"], pod, v["downwardAPI"].value("defaultMode", 0644));
  } else if (v.contains("projected")) {
    add_projected(payload, v["projected"], pod, ctx, tokens);
  } else {
    return std::nullopt;
  }
  return payload;
}

// The `iat` claim of a JWT, 0 when it has none that can be read.
int64_t issued_at(const std::string& token) {
  auto a = token.find('.');
  auto b = token.find('.', a == std::string::npos ? a : a + 1);
  if (a == std::string::npos || b == std::string::npos) return 0;
  std::string part = token.substr(a + 1, b - a - 1);
  for (char& c : part) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (part.size() % 4) part += '=';
  auto claims = json::parse(text::base64_decode(part).value_or(""), nullptr, false);
  if (!claims.is_object() || !claims["iat"].is_number_integer()) return 0;
  return claims["iat"].get<int64_t>();
}

// The kubelet's token manager (pkg/kubelet/token/token_manager.go requiresRefresh): a token
// is replaced when 80% of its requested lifetime has passed, or after 24 hours.
bool token_due(const std::string& token, int64_t seconds, const VolumeContext& ctx) {
  int64_t iat = issued_at(token);
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t age = now - iat;
  return iat == 0 || age >= seconds * 8 / 10 || age >= 24 * 3600 ||
         (ctx.token_refresh_after_s > 0 && age >= ctx.token_refresh_after_s);
}

// pkg/volume/volume_linux.go SetVolumeOwnership: every file and directory (symlinks too)
// gets group fsGroup and the group bits rw (emptyDir) or r (the kinds the kubelet mounts
// read-only: configMap, secret, downwardAPI, projected); directories also setgid and x.
void set_volume_ownership(const fs::path& dir, const VolumeContext& ctx, bool read_only) {
  if (!ctx.fs_group) return;
  auto own = [&](const fs::path& p) {
    lchown(p.c_str(), uid_t(-1), gid_t(*ctx.fs_group));
    auto st = fs::symlink_status(p);
    if (fs::is_symlink(st)) return;
    mode_t mode = mode_t(st.permissions()) | (read_only ? 0440 : 0660);
    if (fs::is_directory(st)) mode |= S_ISGID | 0110;
    chmod(p.c_str(), mode);
  };
  own(dir);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    own(it->path());
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
    TokenPaths tokens;
    auto payload = payload_of(v, pod, ctx, tokens);
    std::error_code ec;
    fs::remove_all(d, ec);  // a retry after a failed start writes afresh
    if (payload) {
      write_atomic(d, *payload);
    } else {
      fs::create_directories(d);
      // An emptyDir is world-writable (the kubelet's setupDir makes it 0777): containers of
      // the pod that run as different users share it (an init container's output, say).
      fs::permissions(d, fs::perms::all);
    }
    set_volume_ownership(d, ctx, payload.has_value());
    out.emplace_back(name, d);
  }
  return out;
}

std::vector<std::string> refresh_volumes(
    const json& pod, const std::vector<std::pair<std::string, fs::path>>& volumes,
    const VolumeContext& ctx) {
  std::vector<std::string> rewritten;
  for (const auto& v : pod["spec"].value("volumes", json::array())) {
    std::string name = v.value("name", "");
    auto where = std::find_if(volumes.begin(), volumes.end(),
                              [&](const auto& vol) { return vol.first == name; });
    if (where == volumes.end() || v.contains("hostPath")) continue;
    TokenPaths tokens;
    std::optional<Payload> payload;
    try {
      payload = payload_of(v, pod, ctx, tokens);
    } catch (const std::exception&) {
      continue;  // the kubelet keeps what it published and tries again at the next sync
    }
    if (!payload) continue;
    // What set_volume_ownership added to the modes is not a change of content.
    if (ctx.fs_group) {
      for (auto& [path, f] : *payload) f.mode |= 0440;
    }
    auto old_payload = published(where->second);
    for (const auto& [path, seconds] : tokens) {
      auto old = old_payload.find(path);
      if (old != old_payload.end() && !token_due(old->second.content, seconds, ctx)) {
        (*payload)[path].content = old->second.content;
      }
    }
    if (*payload == old_payload) continue;
    republish(where->second, old_payload, *payload);
    set_volume_ownership(where->second, ctx, true);
    rewritten.push_back(name);
  }
  return rewritten;
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
