#include "tools/kubesim/protobuf_body.hpp"

#include <cstdint>
#include <map>
#include <vector>

namespace lpk::kubesim {

namespace {

using json = nlohmann::json;

// One message: field number -> the values seen (varints as numbers, the rest as bytes).
struct Message {
  std::multimap<uint32_t, std::string_view> bytes;
  std::multimap<uint32_t, uint64_t> varints;

  std::string str(uint32_t f) const {
    auto it = bytes.find(f);
    return it == bytes.end() ? std::string() : std::string(it->second);
  }
  std::vector<std::string> strs(uint32_t f) const {
    std::vector<std::string> out;
    for (auto [it, end] = bytes.equal_range(f); it != end; ++it) out.emplace_back(it->second);
    return out;
  }
  std::optional<uint64_t> num(uint32_t f) const {
    auto it = varints.find(f);
    return it == varints.end() ? std::nullopt : std::optional<uint64_t>(it->second);
  }
};

bool read_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

std::optional<Message> parse(std::string_view in) {
  Message m;
  while (!in.empty()) {
    uint64_t key = 0, v = 0;
    if (!read_varint(in, key)) return std::nullopt;
    auto field = uint32_t(key >> 3);
    switch (key & 7) {
      case 0:
        if (!read_varint(in, v)) return std::nullopt;
        m.varints.emplace(field, v);
        break;
      case 1:
      case 5: {
        size_t n = (key & 7) == 1 ? 8 : 4;
        if (in.size() < n) return std::nullopt;
        in.remove_prefix(n);
        break;
      }
      case 2:
        if (!read_varint(in, v) || v > in.size()) return std::nullopt;
        m.bytes.emplace(field, in.substr(0, v));
        in.remove_prefix(v);
        break;
      default:
        return std::nullopt;
    }
  }
  return m;
}

Message sub(const Message& m, uint32_t f) {
  auto it = m.bytes.find(f);
  if (it == m.bytes.end()) return {};
  return parse(it->second).value_or(Message{});
}

void put(json& obj, const char* key, const std::string& v) {
  if (!v.empty()) obj[key] = v;
}

// authorization/v1: ResourceAttributes{namespace 1, verb 2, group 3, version 4, resource 5,
// subresource 6, name 7}, NonResourceAttributes{path 1, verb 2},
// SelfSubjectAccessReviewSpec{resourceAttributes 1, nonResourceAttributes 2}.
json access_review_spec(const Message& spec) {
  json out = json::object();
  if (spec.bytes.count(1)) {
    Message ra = sub(spec, 1);
    json r = json::object();
    const char* names[] = {"namespace", "verb",        "group", "version",
                           "resource",  "subresource", "name"};
    for (uint32_t f = 1; f <= 7; ++f) put(r, names[f - 1], ra.str(f));
    out["resourceAttributes"] = r;
  }
  if (spec.bytes.count(2)) {
    Message na = sub(spec, 2);
    json r = json::object();
    put(r, "path", na.str(1));
    put(r, "verb", na.str(2));
    out["nonResourceAttributes"] = r;
  }
  return out;
}

// authentication/v1 TokenRequestSpec{audiences 1, boundObjectRef 3, expirationSeconds 4},
// BoundObjectReference{kind 1, apiVersion 2, name 3, uid 4}.
json token_request_spec(const Message& spec) {
  json out = {{"audiences", spec.strs(1)}};
  if (auto secs = spec.num(4)) out["expirationSeconds"] = int64_t(*secs);
  if (spec.bytes.count(3)) {
    Message ref = sub(spec, 3);
    json r = json::object();
    put(r, "kind", ref.str(1));
    put(r, "apiVersion", ref.str(2));
    put(r, "name", ref.str(3));
    put(r, "uid", ref.str(4));
    out["boundObjectRef"] = r;
  }
  return out;
}

}  // namespace

std::optional<json> decode_protobuf_body(std::string_view body) {
  constexpr std::string_view kMagic("k8s\0", 4);
  if (body.substr(0, 4) != kMagic) return std::nullopt;
  // runtime.Unknown{typeMeta 1 {apiVersion 1, kind 2}, raw 2, contentEncoding 3, contentType 4}
  auto unknown = parse(body.substr(4));
  if (!unknown) return std::nullopt;
  Message type = sub(*unknown, 1);
  auto raw = unknown->bytes.find(2);
  if (raw == unknown->bytes.end()) return std::nullopt;
  auto object = parse(raw->second);  // views into body, which outlives them
  if (!object) return std::nullopt;
  std::string api_version = type.str(1), kind = type.str(2);
  json out = {{"apiVersion", api_version}, {"kind", kind}};
  // Every kind here: metadata 1, spec 2, status 3.
  Message spec = sub(*object, 2);
  if (kind == "SelfSubjectAccessReview") {
    out["spec"] = access_review_spec(spec);
  } else if (kind == "SelfSubjectRulesReview") {
    out["spec"] = json::object();
    put(out["spec"], "namespace", spec.str(1));
  } else if (kind == "TokenRequest") {
    out["spec"] = token_request_spec(spec);
  } else {
    return std::nullopt;
  }
  return out;
}

}  // namespace lpk::kubesim
