#include "tools/kubesim/protobuf_body.hpp"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
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

// Go's generated marshallers write every non-pointer field, set or not: a zero number, an
// empty string, an empty struct, or a struct of those (a Job's status of zero counts).
bool is_zero(std::string_view bytes, int depth = 0) {
  if (bytes.empty()) return true;
  auto m = depth < 4 ? parse(bytes) : std::nullopt;
  if (!m) return false;
  for (const auto& [f, v] : m->varints) {
    if (v != 0) return false;
  }
  for (const auto& [f, v] : m->bytes) {
    if (!is_zero(v, depth + 1)) return false;
  }
  return true;
}

// Stored kinds are decoded strictly: a field this decoder does not know that holds anything
// but its zero value makes the whole body undecodable (415, as before), so that nothing a
// client sent is dropped without a word.
bool only_fields(const Message& m, std::initializer_list<uint32_t> known) {
  auto ok = [&](uint32_t f) { return std::find(known.begin(), known.end(), f) != known.end(); };
  for (const auto& [f, v] : m.bytes) {
    if (!ok(f) && !is_zero(v)) return false;
  }
  for (const auto& [f, v] : m.varints) {
    if (!ok(f) && v != 0) return false;
  }
  return true;
}

struct Strict {
  bool ok = true;
  const Message& check(const Message& m, std::initializer_list<uint32_t> known) {
    ok = ok && only_fields(m, known);
    return m;
  }
};

void put_num(json& obj, const char* key, std::optional<uint64_t> v) {
  if (v) obj[key] = int64_t(*v);
}

// map<string, string> entries: {key 1, value 2}.
void put_map(json& obj, const char* key, const Message& m, uint32_t f) {
  for (auto [it, end] = m.bytes.equal_range(f); it != end; ++it) {
    auto entry = parse(it->second).value_or(Message{});
    obj[key][entry.str(1)] = entry.str(2);
  }
}

// meta/v1 ObjectMeta{name 1, generateName 2, namespace 3, labels 11, annotations 12}.
json object_meta(const Message& m, Strict& strict) {
  strict.check(m, {1, 2, 3, 11, 12});
  json out = json::object();
  put(out, "name", m.str(1));
  put(out, "generateName", m.str(2));
  put(out, "namespace", m.str(3));
  put_map(out, "labels", m, 11);
  put_map(out, "annotations", m, 12);
  return out;
}

// core/v1 Container{name 1, image 2, command 3, args 4, workingDir 5, env 7 {name 1, value 2},
// resources 8 (empty only), imagePullPolicy 14, terminationMessagePath 13,
// terminationMessagePolicy 20}: what `kubectl create job|deployment` sends.
json container(const Message& m, Strict& strict) {
  strict.check(m, {1, 2, 3, 4, 5, 7, 8, 13, 14, 20});
  json out = json::object();
  put(out, "name", m.str(1));
  put(out, "image", m.str(2));
  if (m.bytes.count(3)) out["command"] = m.strs(3);
  if (m.bytes.count(4)) out["args"] = m.strs(4);
  put(out, "workingDir", m.str(5));
  for (auto [it, end] = m.bytes.equal_range(7); it != end; ++it) {
    auto env = strict.check(parse(it->second).value_or(Message{}), {1, 2});
    out["env"].push_back({{"name", env.str(1)}, {"value", env.str(2)}});
  }
  if (m.bytes.count(8)) {
    strict.check(sub(m, 8), {});
    out["resources"] = json::object();
  }
  put(out, "terminationMessagePath", m.str(13));
  put(out, "imagePullPolicy", m.str(14));
  put(out, "terminationMessagePolicy", m.str(20));
  return out;
}

// core/v1 PodTemplateSpec{metadata 1, spec 2}; PodSpec{containers 2, restartPolicy 3,
// terminationGracePeriodSeconds 4, dnsPolicy 6, serviceAccountName 8}.
json pod_template(const Message& m, Strict& strict) {
  strict.check(m, {1, 2});
  Message spec = strict.check(sub(m, 2), {2, 3, 4, 6, 8});
  json out = {{"metadata", object_meta(sub(m, 1), strict)}, {"spec", json::object()}};
  for (auto [it, end] = spec.bytes.equal_range(2); it != end; ++it) {
    out["spec"]["containers"].push_back(container(parse(it->second).value_or(Message{}), strict));
  }
  put(out["spec"], "restartPolicy", spec.str(3));
  put_num(out["spec"], "terminationGracePeriodSeconds", spec.num(4));
  put(out["spec"], "dnsPolicy", spec.str(6));
  put(out["spec"], "serviceAccountName", spec.str(8));
  return out;
}

// batch/v1 Job{metadata 1, spec 2}; JobSpec{parallelism 1, completions 2,
// activeDeadlineSeconds 3, template 6, backoffLimit 7, ttlSecondsAfterFinished 8,
// completionMode 9, suspend 10}.
std::optional<json> job(const Message& object) {
  Strict strict;
  strict.check(object, {1, 2});
  Message spec = strict.check(sub(object, 2), {1, 2, 3, 6, 7, 8, 9, 10});
  json out = {{"metadata", object_meta(sub(object, 1), strict)}, {"spec", json::object()}};
  put_num(out["spec"], "parallelism", spec.num(1));
  put_num(out["spec"], "completions", spec.num(2));
  put_num(out["spec"], "activeDeadlineSeconds", spec.num(3));
  put_num(out["spec"], "backoffLimit", spec.num(7));
  put_num(out["spec"], "ttlSecondsAfterFinished", spec.num(8));
  put(out["spec"], "completionMode", spec.str(9));
  if (auto suspend = spec.num(10)) out["spec"]["suspend"] = *suspend != 0;
  out["spec"]["template"] = pod_template(sub(spec, 6), strict);
  if (!strict.ok) return std::nullopt;
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
  if (kind == "Job" && api_version == "batch/v1") {
    auto decoded = job(*object);
    if (!decoded) return std::nullopt;
    decoded->update(out);
    return decoded;
  }
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
