#include "tools/kubesim/selectors.hpp"

#include <algorithm>
#include <cctype>

namespace lpk::kubesim {

namespace {

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
         c == '/';
}

struct Lexer {
  const std::string& s;
  size_t i = 0;
  void skip_ws() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  std::string word() {
    skip_ws();
    size_t b = i;
    while (i < s.size() && is_key_char(s[i])) ++i;
    return s.substr(b, i - b);
  }
  bool eat(const std::string& t) {
    skip_ws();
    if (s.compare(i, t.size(), t) == 0) {
      i += t.size();
      return true;
    }
    return false;
  }
  bool done() {
    skip_ws();
    return i >= s.size();
  }
};

bool fail(std::string* why, const std::string& msg) {
  if (why) *why = msg;
  return false;
}

// Parses "(a, b)" after in/notin.
bool parse_set(Lexer& lx, std::vector<std::string>& out, std::string* why) {
  if (!lx.eat("(")) return fail(why, "found '" + lx.s.substr(lx.i) + "', expected: '('");
  while (true) {
    out.push_back(lx.word());
    if (lx.eat(")")) return true;
    if (!lx.eat(",")) return fail(why, "expected ',' or ')' in set");
  }
}

bool parse_requirement(Lexer& lx, Requirement& r, std::string* why) {
  if (lx.eat("!")) {
    r.key = lx.word();
    r.op = Requirement::Op::kDoesNotExist;
    return !r.key.empty() || fail(why, "expected a key after '!'");
  }
  r.key = lx.word();
  if (r.key.empty()) return fail(why, "found '" + lx.s.substr(lx.i) + "', expected: identifier");
  size_t save = lx.i;
  std::string w = lx.word();
  if (w == "in" || w == "notin") {
    r.op = w == "in" ? Requirement::Op::kIn : Requirement::Op::kNotIn;
    return parse_set(lx, r.values, why);
  }
  lx.i = save;
  if (lx.eat("!=")) {
    r.op = Requirement::Op::kNotEquals;
  } else if (lx.eat("==") || lx.eat("=")) {
    r.op = Requirement::Op::kEquals;
  } else {
    r.op = Requirement::Op::kExists;
    return true;
  }
  r.values.push_back(lx.word());
  return true;
}

}  // namespace

std::optional<LabelSelector> LabelSelector::parse(const std::string& text, std::string* why) {
  LabelSelector sel;
  Lexer lx{text};
  if (lx.done()) return sel;
  while (true) {
    Requirement r;
    if (!parse_requirement(lx, r, why)) return std::nullopt;
    sel.reqs_.push_back(std::move(r));
    if (lx.done()) return sel;
    if (!lx.eat(",")) {
      fail(why, "found '" + text.substr(lx.i) + "', expected: ',' or end of string");
      return std::nullopt;
    }
  }
}

std::optional<LabelSelector> LabelSelector::from_json(const json& sel, std::string* why) {
  LabelSelector out;
  if (!sel.is_object()) return out;
  if (auto ml = sel.find("matchLabels"); ml != sel.end() && ml->is_object()) {
    out = from_map(*ml);
  }
  auto me = sel.find("matchExpressions");
  if (me == sel.end() || !me->is_array()) return out;
  for (const auto& e : *me) {
    Requirement r;
    r.key = e.value("key", "");
    std::string op = e.value("operator", "");
    if (op == "In")
      r.op = Requirement::Op::kIn;
    else if (op == "NotIn")
      r.op = Requirement::Op::kNotIn;
    else if (op == "Exists")
      r.op = Requirement::Op::kExists;
    else if (op == "DoesNotExist")
      r.op = Requirement::Op::kDoesNotExist;
    else {
      fail(why, "\"" + op + "\" is not a valid label selector operator");
      return std::nullopt;
    }
    if (auto v = e.find("values"); v != e.end() && v->is_array()) {
      for (const auto& s : *v) r.values.push_back(s.get<std::string>());
    }
    out.reqs_.push_back(std::move(r));
  }
  return out;
}

LabelSelector LabelSelector::from_map(const json& labels) {
  LabelSelector out;
  if (!labels.is_object()) return out;
  for (const auto& [k, v] : labels.items()) {
    out.reqs_.push_back({k, Requirement::Op::kEquals, {v.is_string() ? v.get<std::string>() : ""}});
  }
  return out;
}

bool LabelSelector::matches(const json& labels) const {
  for (const auto& r : reqs_) {
    bool has = labels.is_object() && labels.contains(r.key) && labels[r.key].is_string();
    std::string v = has ? labels[r.key].get<std::string>() : "";
    bool in = std::find(r.values.begin(), r.values.end(), v) != r.values.end();
    switch (r.op) {
      case Requirement::Op::kEquals:
      case Requirement::Op::kIn:
        if (!has || !in) return false;
        break;
      case Requirement::Op::kNotEquals:
      case Requirement::Op::kNotIn:
        if (has && in) return false;
        break;
      case Requirement::Op::kExists:
        if (!has) return false;
        break;
      case Requirement::Op::kDoesNotExist:
        if (has) return false;
        break;
    }
  }
  return true;
}

std::optional<std::vector<FieldRequirement>> parse_field_selector(
    const std::string& text, const std::vector<std::string>& supported, std::string* why) {
  std::vector<FieldRequirement> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string term = text.substr(pos, end - pos);
    pos = end + 1;
    FieldRequirement r{};
    size_t op = term.find("!=");
    size_t len = 2;
    r.negate = op != std::string::npos;
    if (!r.negate) {
      op = term.find("==");
      if (op == std::string::npos) {
        op = term.find('=');
        len = 1;
      }
    }
    if (op == std::string::npos) {
      if (why) *why = "invalid selector: '" + text + "'; can't understand '" + term + "'";
      return std::nullopt;
    }
    r.field = term.substr(0, op);
    r.value = term.substr(op + len);
    if (std::find(supported.begin(), supported.end(), r.field) == supported.end()) {
      if (why) *why = "field label not supported: " + r.field;
      return std::nullopt;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string field_value(const json& obj, const std::string& path) {
  const json* cur = &obj;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    if (dot == std::string::npos) dot = path.size();
    std::string part = path.substr(pos, dot - pos);
    if (!cur->is_object() || !cur->contains(part)) return "";
    cur = &(*cur)[part];
    pos = dot + 1;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_boolean()) return cur->get<bool>() ? "true" : "false";
  if (cur->is_number()) return cur->dump();
  return "";
}

bool fields_match(const std::vector<FieldRequirement>& reqs, const json& obj) {
  for (const auto& r : reqs) {
    bool eq = field_value(obj, r.field) == r.value;
    if (eq == r.negate) return false;
  }
  return true;
}

}  // namespace lpk::kubesim
