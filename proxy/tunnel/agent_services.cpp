#include "proxy/tunnel/agent_services.hpp"

#include <nlohmann/json.hpp>

#include "kube/text.hpp"

namespace lpk::tunnel {

namespace {

using Json = nlohmann::json;

/// `name` (the peer's) as a one-line message can show it: control characters as \xNN.
std::string printable(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : name) {
    if (c >= 0x20 && c != 0x7f) {
      out.push_back(char(c));
    } else {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

/// Each check either passes or sets `why` to the field that is wrong, and parsing stops.
struct Reader {
  std::string why;

  bool fail(std::string text) {
    why = std::move(text);
    return false;
  }

  /// The string at `key` of `object` into `out`; a missing optional field leaves `out` alone.
  bool string(const Json& object, const char* key, const std::string& where, std::string& out,
              bool required = true) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      return required ? fail(where + "." + key + " is missing") : true;
    }
    if (!it->is_string()) return fail(where + "." + key + " is not a string");
    out = it->get<std::string>();
    return true;
  }

  bool file(const Json& f, const std::string& where, AgentFile& file) {
    if (!f.is_object()) return fail(where + " is not an object");
    std::string data;
    if (!string(f, "path", where, file.path) || !string(f, "data", where, data)) return false;
    auto mode = f.find("mode");
    if (mode == f.end() || !mode->is_number_unsigned() || mode->get<std::uint64_t>() > 07777) {
      return fail(where + ".mode is not a file mode");
    }
    file.mode = mode->get<std::uint32_t>();
    auto bytes = text::base64_decode(data);
    if (!bytes) return fail(where + ".data is not base64");
    file.bytes = std::move(*bytes);
    return true;
  }

  bool path(const Json& p, const std::string& where, std::string& out) {
    if (!p.is_string()) return fail(where + " is not a string");
    out = p.get<std::string>();
    return true;
  }

  bool skipped(const Json& s, const std::string& where, SkippedFile& file) {
    if (!s.is_object()) return fail(where + " is not an object");
    return string(s, "path", where, file.path) && string(s, "reason", where, file.reason);
  }

  /// Each element of the array `key` through `one` into `out`.
  template <class T, class Parse>
  bool array(const Json& doc, const char* key, std::vector<T>& out, Parse one) {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_array()) return fail(std::string(key) + " is not an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      T item;
      if (!(this->*one)((*it)[i], std::string(key) + "[" + std::to_string(i) + "]", item)) {
        return false;
      }
      out.push_back(std::move(item));
    }
    return true;
  }

  bool document(const Json& doc, AgentEnvironment& env) {
    if (!doc.is_object()) return fail("the document is not a JSON object");
    auto vars = doc.find("env");
    if (vars == doc.end() || !vars->is_object()) return fail("env is not an object");
    for (const auto& [key, value] : vars->items()) {
      if (!value.is_string()) return fail("env." + printable(key) + " is not a string");
      env.env.emplace(key, value.get<std::string>());
    }
    if (!array(doc, "files", env.files, &Reader::file) ||
        !array(doc, "skipped", env.skipped, &Reader::skipped)) {
      return false;
    }
    // Pod and container are informative: absent is fine, the wrong type is not.
    if (auto pod = doc.find("pod"); pod != doc.end() && !pod->is_null()) {
      if (!pod->is_object()) return fail("pod is not an object");
      if (!string(*pod, "name", "pod", env.pod_name, false) ||
          !string(*pod, "namespace", "pod", env.pod_namespace, false)) {
        return false;
      }
    }
    return string(doc, "container", "document", env.container, false);
  }

  bool update(const Json& doc, FilesUpdate& out) {
    if (!doc.is_object()) return fail("the message is not a JSON object");
    auto full = doc.find("full");
    if (full == doc.end() || !full->is_boolean()) return fail("full is not a boolean");
    out.full = full->get<bool>();
    return array(doc, "files", out.files, &Reader::file) &&
           array(doc, "removed", out.removed, &Reader::path) &&
           array(doc, "skipped", out.skipped, &Reader::skipped);
  }
};

Json encode_files(const std::vector<AgentFile>& files) {
  Json out = Json::array();
  for (const auto& f : files) {
    out.push_back({{"path", f.path}, {"mode", f.mode}, {"data", text::base64_encode(f.bytes)}});
  }
  return out;
}

Json encode_skipped(const std::vector<SkippedFile>& skipped) {
  Json out = Json::array();
  for (const auto& s : skipped) out.push_back({{"path", s.path}, {"reason", s.reason}});
  return out;
}

std::string dump(const Json& doc) { return doc.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

std::string encode_environment(const AgentEnvironment& environment) {
  Json doc;
  doc["env"] = Json::object();
  for (const auto& [key, value] : environment.env) doc["env"][key] = value;
  doc["files"] = encode_files(environment.files);
  doc["skipped"] = encode_skipped(environment.skipped);
  doc["pod"] = {{"name", environment.pod_name}, {"namespace", environment.pod_namespace}};
  doc["container"] = environment.container;
  return dump(doc);
}

std::string encode_files_update(const FilesUpdate& update) {
  Json doc = {{"full", update.full},
              {"files", encode_files(update.files)},
              {"removed", update.removed},
              {"skipped", encode_skipped(update.skipped)}};
  return dump(doc) + "\n";
}

// One JSON text read by `read` into a T; `what` names it in the Problem.
template <class T>
Result<T> parse_with(std::string_view text, const std::string& what, const char* hint,
                     bool (Reader::*read)(const Json&, T&)) {
  auto doc = Json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) {
    return Problem{make_error_code(Error::bad_document),
                   what + " is not valid JSON (" + std::to_string(text.size()) + " bytes)" + hint};
  }
  T out;
  Reader reader;
  if (!(reader.*read)(doc, out)) {
    return Problem{make_error_code(Error::bad_document), what + " is malformed: " + reader.why};
  }
  return out;
}

Result<FilesUpdate> parse_files_update(std::string_view line) {
  return parse_with<FilesUpdate>(line, "a files update from the agent", "", &Reader::update);
}

Result<AgentEnvironment> parse_environment(std::string_view document) {
  return parse_with<AgentEnvironment>(
      document, "the agent's environment",
      "; the agent and lpk-proxy may be of different versions", &Reader::document);
}

bool is_service_name(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.size() < kServiceDomain.size()) return false;
  auto tail = host.substr(host.size() - kServiceDomain.size());
  return text::iequals(tail, kServiceDomain) &&
         (host.size() == kServiceDomain.size() ||
          host[host.size() - kServiceDomain.size() - 1] == '.');
}

}  // namespace lpk::tunnel
