#include "tools/kubesim/protobuf_wire.hpp"

#include "kube/text.hpp"

namespace lpk::kubesim::pb {

namespace {

using json = nlohmann::json;

// Deeper than any object kubesim decodes (a Deployment's container port is at 6).
constexpr int kMaxDepth = 12;

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

bool read_fixed(std::string_view& in, size_t n, uint64_t& v) {
  if (in.size() < n) return false;
  v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t(static_cast<uint8_t>(in[i])) << (8 * i);
  in.remove_prefix(n);
  return true;
}

// Go's encoding/json would not write anything else as a string; nlohmann's dump() would throw.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    if (n == 9 || i + n >= s.size()) return false;
    uint32_t cp = n == 0 ? c : c & (0x3f >> n);
    for (size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
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
  for (const auto& [f, v] : m->fixed) {
    if (v != 0) return false;
  }
  for (const auto& [f, v] : m->bytes) {
    if (!is_zero(v, depth + 1)) return false;
  }
  return true;
}

bool is_varint(Type t) { return t == Type::kInt || t == Type::kBool; }

const Field* find(const Schema& s, uint32_t number) {
  for (size_t i = 0; i < s.size; ++i) {
    if (s.fields[i].number == number) return &s.fields[i];
  }
  return nullptr;
}

// A field the schema does not know, or one sent with another wire type than its own, is
// accepted only holding its zero value.
bool only_known(const Message& m, const Schema& s) {
  for (const auto& [f, v] : m.varints) {
    auto* field = find(s, f);
    if (v != 0 && !(field && is_varint(field->type))) return false;
  }
  for (const auto& [f, v] : m.bytes) {
    auto* field = find(s, f);
    if (!is_zero(v) && !(field && !is_varint(field->type))) return false;
  }
  for (const auto& [f, v] : m.fixed) {
    if (v != 0) return false;
  }
  return true;
}

std::optional<json> decode_at(std::string_view bytes, const Schema& s, int depth);

// map entries {key 1, value 2}.
bool write_map(json& out, const Message& m, const Field& f) {
  static constexpr Field kEntry[] = {{1, "key", Type::kString}, {2, "value", Type::kString}};
  for (auto [it, end] = m.bytes.equal_range(f.number); it != end; ++it) {
    auto entry = parse(it->second);
    if (!entry || !only_known(*entry, schema_of(kEntry))) return false;
    std::string key = entry->str(1), value = entry->str(2);
    if (!valid_utf8(key)) return false;
    if (f.type == Type::kBytesMap) {
      value = text::base64_encode(value);
    } else if (!valid_utf8(value)) {
      return false;
    }
    out[f.name][key] = value;
  }
  return true;
}

std::optional<json> int_or_string(std::string_view bytes) {
  static constexpr Field kFields[] = {
      {1, "type", Type::kInt}, {2, "intVal", Type::kInt}, {3, "strVal", Type::kString}};
  auto m = parse(bytes);
  if (!m || !only_known(*m, schema_of(kFields))) return std::nullopt;
  if (m->num(1).value_or(0) == 0) return json(int64_t(int32_t(m->num(2).value_or(0))));
  if (m->num(1) != 1 || !valid_utf8(m->str(3))) return std::nullopt;
  return json(m->str(3));
}

bool write_messages(json& out, const Message& m, const Field& f, int depth) {
  auto [it, end] = m.bytes.equal_range(f.number);
  if (it == end && f.keep_zero) out[f.name] = nullptr;
  for (; it != end; ++it) {
    auto item = decode_at(it->second, *f.schema, depth + 1);
    if (!item) return false;
    out[f.name].push_back(std::move(*item));
  }
  return true;
}

// One singular field sent once at most (Go never writes one twice; protobuf would merge them).
bool write_single(json& out, const Message& m, const Field& f, int depth) {
  bool varint = is_varint(f.type);
  size_t n = varint ? m.varints.count(f.number) : m.bytes.count(f.number);
  if (n == 0) return true;
  if (n > 1) return false;
  if (varint) {
    uint64_t v = *m.num(f.number);
    if (v == 0 && !f.keep_zero) return true;
    out[f.name] = f.type == Type::kBool ? json(v != 0) : json(static_cast<int64_t>(v));
    return true;
  }
  std::string_view bytes = m.bytes.find(f.number)->second;
  std::optional<json> value;
  switch (f.type) {
    case Type::kString:
      if (!valid_utf8(bytes)) return false;
      if (!bytes.empty() || f.keep_zero) out[f.name] = std::string(bytes);
      return true;
    case Type::kObject:
      value = decode_at(bytes, *f.schema, depth + 1);
      break;
    case Type::kIntOrString:
      value = int_or_string(bytes);
      break;
    case Type::kTime:
      if (is_zero(bytes)) value = json(nullptr);
      break;
    default:
      return false;
  }
  if (value) out[f.name] = std::move(*value);
  return value.has_value();
}

bool write_field(json& out, const Message& m, const Field& f, int depth) {
  switch (f.type) {
    case Type::kStrings: {
      auto values = m.strs(f.number);
      for (const auto& v : values) {
        if (!valid_utf8(v)) return false;
      }
      if (!values.empty()) out[f.name] = values;
      if (values.empty() && f.keep_zero) out[f.name] = nullptr;
      return true;
    }
    case Type::kStringMap:
    case Type::kBytesMap:
      return write_map(out, m, f);
    case Type::kObjects:
      return write_messages(out, m, f, depth);
    default:
      return write_single(out, m, f, depth);
  }
}

std::optional<json> decode_at(std::string_view bytes, const Schema& s, int depth) {
  if (depth > kMaxDepth) return std::nullopt;
  auto m = parse(bytes);
  if (!m || !only_known(*m, s)) return std::nullopt;
  json out = json::object();
  for (size_t i = 0; i < s.size; ++i) {
    if (!write_field(out, *m, s.fields[i], depth)) return std::nullopt;
  }
  return out;
}

}  // namespace

std::string Message::str(uint32_t f) const {
  auto it = bytes.find(f);
  return it == bytes.end() ? std::string() : std::string(it->second);
}

std::vector<std::string> Message::strs(uint32_t f) const {
  std::vector<std::string> out;
  for (auto [it, end] = bytes.equal_range(f); it != end; ++it) out.emplace_back(it->second);
  return out;
}

std::optional<uint64_t> Message::num(uint32_t f) const {
  auto it = varints.find(f);
  return it == varints.end() ? std::nullopt : std::optional<uint64_t>(it->second);
}

std::optional<Message> parse(std::string_view in) {
  Message m;
  while (!in.empty()) {
    uint64_t key = 0, v = 0;
    if (!read_varint(in, key) || key >> 3 == 0 || key >> 3 > UINT32_MAX) return std::nullopt;
    auto field = uint32_t(key >> 3);
    switch (key & 7) {
      case 0:
        if (!read_varint(in, v)) return std::nullopt;
        m.varints.emplace(field, v);
        break;
      case 1:
      case 5:
        if (!read_fixed(in, (key & 7) == 1 ? 8 : 4, v)) return std::nullopt;
        m.fixed.emplace(field, v);
        break;
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

const Schema kEmpty{nullptr, 0};

std::optional<json> decode(std::string_view bytes, const Schema& schema) {
  return decode_at(bytes, schema, 0);
}

}  // namespace lpk::kubesim::pb
