#pragma once
// Label and field selectors: the string syntax of ?labelSelector= / ?fieldSelector= and the
// LabelSelector object of workload specs. Pure functions.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace lpk::kubesim {

using json = nlohmann::json;

struct Requirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Op op;
  std::vector<std::string> values;
};

class LabelSelector {
 public:
  /// Parses "a=b,c!=d,e in (x,y),f notin (z),g,!h". Returns nullopt with why set on bad syntax.
  static std::optional<LabelSelector> parse(const std::string& text, std::string* why = nullptr);
  /// From a LabelSelector object {matchLabels, matchExpressions}. Null or {} selects everything.
  static std::optional<LabelSelector> from_json(const json& sel, std::string* why = nullptr);
  /// From a map selector (a Service's spec.selector); an empty map selects everything.
  static LabelSelector from_map(const json& labels);

  bool matches(const json& labels) const;
  bool empty() const { return reqs_.empty(); }
  const std::vector<Requirement>& requirements() const { return reqs_; }

 private:
  std::vector<Requirement> reqs_;
};

struct FieldRequirement {
  std::string field;
  std::string value;
  bool negate;
};

/// Parses "metadata.name=x,status.phase!=Running". Only fields in supported are accepted.
std::optional<std::vector<FieldRequirement>> parse_field_selector(
    const std::string& text, const std::vector<std::string>& supported, std::string* why);

/// The value a field path names in obj ("metadata.name" -> obj.metadata.name), "" when absent.
std::string field_value(const json& obj, const std::string& path);

bool fields_match(const std::vector<FieldRequirement>& reqs, const json& obj);

}  // namespace lpk::kubesim
