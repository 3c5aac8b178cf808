#include "proxy/tunnel/console_line.hpp"

#include <nlohmann/json.hpp>
#include <utility>

namespace lpk::tunnel {

namespace {
bool g_json_lines = false;
}  // namespace

void set_json_lines(bool on) { g_json_lines = on; }

bool json_lines() { return g_json_lines; }

std::string json_quoted(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string json_line(std::string_view event, std::string_view text,
                      std::initializer_list<std::string> values) {
  std::string out = "{\"event\":" + json_quoted(event) + ",\"text\":" + json_quoted(text) +
                    ",\"values\":[";
  bool first = true;
  for (const auto& v : values) {
    if (!std::exchange(first, false)) out += ',';
    out += v;
  }
  return out + "]}";
}

std::string console_lines_json(std::initializer_list<const ConsoleLine*> lines) {
  nlohmann::json table = nlohmann::json::object();
  for (const auto* line : lines) {
    table[std::string(line->name)] = {{"format", line->format}, {"pattern", line->pattern}};
  }
  return table.dump(2);
}

}  // namespace lpk::tunnel
