#pragma once
// The protobuf wire format as the apiserver's generated marshallers write it, and a decoder
// driven by tables of fields (one Schema per Go type) into the JSON Go's encoding/json writes
// for the same object. Pure: bytes in, JSON out; every view points into the caller's bytes.

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lpk::kubesim::pb {

/// One message: field number -> the values seen (varints as numbers, fixed-size ones as their
/// bits, length-delimited ones as views into the bytes parsed).
struct Message {
  std::multimap<uint32_t, std::string_view> bytes;
  std::multimap<uint32_t, uint64_t> varints;
  std::multimap<uint32_t, uint64_t> fixed;

  std::string str(uint32_t f) const;
  std::vector<std::string> strs(uint32_t f) const;
  std::optional<uint64_t> num(uint32_t f) const;
};

/// nullopt when in is not a sequence of well-formed fields.
std::optional<Message> parse(std::string_view in);
/// Field f parsed as a message; an empty one when f is absent or not a message.
Message sub(const Message& m, uint32_t f);

/// How a field is written in JSON.
enum class Type {
  kString,       // string, omitted when empty
  kInt,          // varint int32/int64, omitted when zero
  kBool,         // varint bool, omitted when false
  kStrings,      // repeated string, omitted when none (null with keep_zero)
  kStringMap,    // map<string, string>, omitted when empty
  kBytesMap,     // map<string, bytes>: values base64, omitted when empty
  kObject,       // a message (Schema), {} when present and empty
  kObjects,      // repeated message (Schema), omitted when none
  kIntOrString,  // util/intstr IntOrString{type 1, intVal 2, strVal 3}: a number or a string
  kTime,         // meta/v1 Time: only its zero value, written null as Go writes it
};

struct Schema;

struct Field {
  uint32_t number;
  const char* name;
  Type type;
  const Schema* schema = nullptr;  // kObject, kObjects
  // Written even when zero: a pointer field that was set (Go marshals those only when non-nil),
  // or one without omitempty (kObjects then writes null for none).
  bool keep_zero = false;
};

struct Schema {
  const Field* fields;
  size_t size;
};

template <size_t N>
constexpr Schema schema_of(const Field (&fields)[N]) {
  return {fields, N};
}

/// A message accepted only as its zero value, written {} (a status kubesim fills itself, a
/// container's resources when kubectl sets none).
extern const Schema kEmpty;

/// The message as JSON, or nullopt when bytes do not parse, a known field has the wrong wire
/// type, or a field the schema does not know holds anything but its zero value: so nothing a
/// client sent is dropped without a word.
std::optional<nlohmann::json> decode(std::string_view bytes, const Schema& schema);

}  // namespace lpk::kubesim::pb
