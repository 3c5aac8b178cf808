#include "tools/kubesim/runtime/image_store.hpp"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "tools/kubesim/runtime/netns.hpp"

namespace lpk::kubesim {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kRefName = "org.opencontainers.image.ref.name";

// ---- OCI archives are plain (ustar) tars of an OCI layout.

struct TarEntry {
  std::string name;
  char type = '0';
  uint64_t size = 0;
  std::streamoff offset = 0;  // of the content
};

uint64_t octal(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + (p[i] - '0');
  return v;
}

// Every member's header, in order. Long names (GNU 'L', pax 'x' path) are honoured because
// a layout's blob paths fit in 100 bytes but a tool may still write them that way.
std::vector<TarEntry> tar_entries(std::ifstream& in) {
  std::vector<TarEntry> out;
  std::string long_name;
  char h[512];
  while (in.read(h, 512)) {
    if (h[0] == '\0') break;
    TarEntry e;
    e.size = octal(h + 124, 12);
    e.type = h[156];
    e.offset = in.tellg();
    // Only POSIX ustar has a name prefix; GNU tar keeps times where it would be.
    bool posix = std::memcmp(h + 257, "ustar\0", 6) == 0;
    std::string prefix = posix ? std::string(h + 345, strnlen(h + 345, 155)) : "";
    std::string name(h, strnlen(h, 100));
    e.name = !long_name.empty() ? long_name : prefix.empty() ? name : prefix + "/" + name;
    long_name.clear();
    if (e.type == 'L' || e.type == 'x') {
      std::string data(e.size, '\0');
      in.read(data.data(), std::streamsize(e.size));
      if (e.type == 'L') long_name = data.c_str();
      auto path = data.find(" path=");
      if (e.type == 'x' && path != std::string::npos) {
        long_name = data.substr(path + 6, data.find('\n', path) - path - 6);
      }
    } else {
      out.push_back(e);
    }
    in.seekg(e.offset + std::streamoff((e.size + 511) / 512 * 512));
  }
  for (auto& e : out) {
    if (e.name.rfind("./", 0) == 0) e.name.erase(0, 2);
  }
  return out;
}

std::optional<std::string> tar_member(const fs::path& archive, const std::string& name) {
  std::ifstream in(archive, std::ios::binary);
  for (const auto& e : tar_entries(in)) {
    if (e.name != name || (e.type != '0' && e.type != '\0')) continue;
    in.clear();
    in.seekg(e.offset);
    std::string data(e.size, '\0');
    if (!in.read(data.data(), std::streamsize(e.size))) break;
    return data;
  }
  return std::nullopt;
}

// The regular files of the archive's layout (blobs, index.json, oci-layout) under dir.
void tar_extract(const fs::path& archive, const fs::path& dir) {
  std::ifstream in(archive, std::ios::binary);
  for (const auto& e : tar_entries(in)) {
    if (e.type != '0' && e.type != '\0') continue;
    if (e.name.find("..") != std::string::npos || e.name.empty() || e.name[0] == '/') {
      throw std::runtime_error(archive.string() + ": unsafe member name " + e.name);
    }
    fs::create_directories((dir / e.name).parent_path());
    std::ofstream out(dir / e.name, std::ios::binary | std::ios::trunc);
    in.clear();
    in.seekg(e.offset);
    std::vector<char> buf(1 << 20);
    for (uint64_t left = e.size; left > 0;) {
      auto n = std::streamsize(std::min<uint64_t>(left, buf.size()));
      if (!in.read(buf.data(), n)) throw std::runtime_error(archive.string() + ": truncated");
      out.write(buf.data(), n);
      left -= uint64_t(n);
    }
  }
}

// ---- the store

// One image of the store: where it is and which manifest.
struct StoreEntry {
  fs::path source;
  bool archive = false;
  std::string ref;     // normalized ref.name
  std::string digest;  // of the manifest
};

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::optional<std::string> layout_file(const StoreEntry& e, const std::string& name) {
  return e.archive ? tar_member(e.source, name) : read_text(e.source / name);
}

std::vector<StoreEntry> scan(const fs::path& store) {
  std::vector<StoreEntry> out;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(store, ec)) {
    StoreEntry base;
    base.source = f.path();
    base.archive = f.is_regular_file() && f.path().extension() == ".tar";
    if (!base.archive && !fs::exists(f.path() / "index.json")) continue;
    auto index = json::parse(layout_file(base, "index.json").value_or(""), nullptr, false);
    if (!index.is_object() || !index["manifests"].is_array()) continue;
    for (const auto& m : index["manifests"]) {
      StoreEntry e = base;
      e.digest = m.value("digest", "");
      std::string ref = m.value("annotations", json::object()).value(kRefName, "");
      e.ref = ref.empty() ? "" : normalize_reference(ref);
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::string blob_path(const std::string& digest) {
  auto colon = digest.find(':');
  if (colon == std::string::npos || digest.find('/') != std::string::npos) {
    throw std::runtime_error("bad digest " + digest);
  }
  return "blobs/" + digest.substr(0, colon) + "/" + digest.substr(colon + 1);
}

std::string blob(const StoreEntry& e, const std::string& digest) {
  auto text = layout_file(e, blob_path(digest));
  if (!text) throw std::runtime_error(e.source.string() + " has no blob " + digest);
  return *text;
}

// A layout umoci can read holding only this image, tagged "kubesim": the archive's content
// extracted, or a link to the layout directory's blobs.
void stage_layout(const StoreEntry& e, const fs::path& layout) {
  fs::create_directories(layout);
  if (e.archive) {
    tar_extract(e.source, layout);
  } else {
    fs::create_directory_symlink(fs::absolute(e.source / "blobs"), layout / "blobs");
  }
  std::ofstream(layout / "oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
  json index = {{"schemaVersion", 2},
                {"manifests",
                 {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", e.digest},
                   {"size", blob(e, e.digest).size()},
                   {"annotations", {{kRefName, "kubesim"}}}}}}};
  std::ofstream(layout / "index.json", std::ios::trunc) << index.dump();
}

std::vector<std::string> strings_of(const json& j) {
  std::vector<std::string> out;
  if (j.is_array()) {
    for (const auto& s : j) {
      if (s.is_string()) out.push_back(s);
    }
  }
  return out;
}

// A line of /etc/passwd or /etc/group whose name (field 0) or id (field 2) is `key`.
std::optional<std::vector<std::string>> db_entry(const fs::path& file, const std::string& key,
                                                 bool by_id) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    for (size_t p = 0;;) {
      size_t c = line.find(':', p);
      f.push_back(line.substr(p, c - p));
      if (c == std::string::npos) break;
      p = c + 1;
    }
    if (f.size() >= 4 && f[by_id ? 2 : 0] == key) return f;
  }
  return std::nullopt;
}

bool numeric(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

std::string normalize_reference(const std::string& ref) {
  std::string s = ref;
  for (const char* prefix : {"docker.io/library/", "docker.io/", "index.docker.io/library/"}) {
    if (s.rfind(prefix, 0) == 0) {
      s = s.substr(std::string(prefix).size());
      break;
    }
  }
  if (s.find('@') != std::string::npos) return s;
  size_t slash = s.rfind('/');
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) s += ":latest";
  return s;
}

ImageConfig parse_image_config(const std::string& config_json) {
  auto doc = json::parse(config_json, nullptr, false);
  if (!doc.is_object()) throw std::runtime_error("image config is not a JSON object");
  json c = doc.value("config", json::object());
  if (!c.is_object()) throw std::runtime_error("image config has no config object");
  ImageConfig out;
  out.entrypoint = strings_of(c.value("Entrypoint", json()));
  out.cmd = strings_of(c.value("Cmd", json()));
  for (const auto& kv : strings_of(c.value("Env", json()))) {
    auto eq = kv.find('=');
    out.env.emplace_back(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  if (c["User"].is_string()) out.user = c["User"];
  if (c["WorkingDir"].is_string()) out.working_dir = c["WorkingDir"];
  return out;
}

std::optional<UserIds> resolve_user(const std::string& user, const fs::path& rootfs,
                                    std::string& error) {
  UserIds ids;
  if (user.empty()) return ids;
  std::string u = user.substr(0, user.find(':'));
  std::string g = user.find(':') == std::string::npos ? "" : user.substr(user.find(':') + 1);
  auto pw = db_entry(rootfs / "etc/passwd", u, numeric(u));
  if (!numeric(u) && !pw) {
    error = "unable to find user " + u + ": no matching entries in passwd file";
    return std::nullopt;
  }
  ids.uid = numeric(u) ? uid_t(std::stoul(u)) : uid_t(std::stoul((*pw)[2]));
  if (pw && numeric((*pw)[3])) ids.gid = gid_t(std::stoul((*pw)[3]));
  if (g.empty()) return ids;
  auto gr = numeric(g) ? std::nullopt : db_entry(rootfs / "etc/group", g, false);
  if (!numeric(g) && !gr) {
    error = "unable to find group " + g + ": no matching entries in group file";
    return std::nullopt;
  }
  ids.gid = gid_t(std::stoul(numeric(g) ? g : (*gr)[2]));
  return ids;
}

ImageStore::ImageStore(fs::path store, fs::path cache)
    : store_(std::move(store)), cache_(std::move(cache)) {}

std::optional<UnpackedImage> ImageStore::pull(const std::string& image) {
  std::string want = normalize_reference(image);
  auto at = want.find('@');
  std::optional<StoreEntry> found;
  for (auto& e : scan(store_)) {
    bool match = at != std::string::npos ? e.digest == want.substr(at + 1) : e.ref == want;
    if (match) found = std::move(e);
    if (found) break;
  }
  if (!found) return std::nullopt;
  std::string hex = found->digest.substr(found->digest.find(':') + 1);
  fs::path dir = cache_ / hex;
  if (!fs::exists(dir / "rootfs")) {
    fs::path tmp = cache_ / (hex + ".tmp-" + std::to_string(getpid()));
    std::error_code ec;
    fs::remove_all(tmp, ec);
    stage_layout(*found, tmp / "layout");
    run_command({"umoci", "raw", "unpack", "--image", (tmp / "layout").string() + ":kubesim",
                 (tmp / "rootfs").string()});
    fs::remove_all(tmp / "layout", ec);
    fs::rename(tmp, dir);
  }
  auto manifest = json::parse(blob(*found, found->digest), nullptr, false);
  if (!manifest.is_object() || !manifest["config"].is_object()) {
    throw std::runtime_error(found->source.string() + ": manifest " + found->digest +
                             " is not an image manifest");
  }
  UnpackedImage out;
  out.rootfs = dir / "rootfs";
  out.config = parse_image_config(blob(*found, manifest["config"].value("digest", "")));
  out.image_id =
      (found->ref.empty() ? want.substr(0, at) : found->ref.substr(0, found->ref.rfind(':'))) +
      "@" + found->digest;
  return out;
}

}  // namespace lpk::kubesim
