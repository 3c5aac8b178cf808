#include "tools/kubesim/routes.hpp"

#include <vector>

namespace lpk::kubesim {

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      bool ok = true;
      for (int j = 1; j <= 2; ++j) {
        char c = s[i + j];
        v <<= 4;
        if (c >= '0' && c <= '9')
          v |= c - '0';
        else if (c >= 'a' && c <= 'f')
          v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
          v |= c - 'A' + 10;
        else
          ok = false;
      }
      if (ok) {
        out += char(v);
        i += 2;
        continue;
      }
    }
    out += s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= q.size() && !q.empty()) {
    size_t amp = q.find('&', pos);
    if (amp == std::string_view::npos) amp = q.size();
    std::string_view kv = q.substr(pos, amp - pos);
    size_t eq = kv.find('=');
    std::string k = url_decode(kv.substr(0, eq));
    std::string v = eq == std::string_view::npos ? "" : url_decode(kv.substr(eq + 1));
    if (!k.empty()) {
      if (k == "ports" && out.count(k))
        out[k] += "," + v;
      else
        out[k] = v;
    }
    pos = amp + 1;
  }
  return out;
}

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) parts.push_back(url_decode(path.substr(pos, slash - pos)));
    pos = slash + 1;
  }
  return parts;
}

}  // namespace

std::optional<Route> parse_route(std::string_view path) {
  auto parts = split_path(path);
  std::string group, version;
  size_t i = 0;
  if (parts.size() >= 2 && parts[0] == "api") {
    version = parts[1];
    i = 2;
  } else if (parts.size() >= 3 && parts[0] == "apis") {
    group = parts[1];
    version = parts[2];
    i = 3;
  } else {
    return std::nullopt;
  }
  std::vector<std::string> rest(parts.begin() + i, parts.end());
  Route r;
  // "namespaces/x/status" is the namespace's own subresource, not a type called status.
  if (rest.size() >= 3 && rest[0] == "namespaces" && find_resource(group, version, rest[2])) {
    r.ns = rest[1];
    r.type = find_resource(group, version, rest[2]);
    if (!r.type->namespaced || rest.size() > 5) return std::nullopt;
    if (rest.size() >= 4) r.name = rest[3];
    if (rest.size() == 5) r.sub = rest[4];
    return r;
  }
  if (rest.empty() || rest.size() > 3) return std::nullopt;
  r.type = find_resource(group, version, rest[0]);
  if (!r.type) return std::nullopt;
  if (rest.size() >= 2) {
    if (r.type->namespaced) return std::nullopt;
    r.name = rest[1];
  }
  if (rest.size() == 3) r.sub = rest[2];
  return r;
}

}  // namespace lpk::kubesim
