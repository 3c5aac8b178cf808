#include "proxy/tunnel/console_line.hpp"

#include <nlohmann/json.hpp>

namespace lpk::tunnel {

std::string console_lines_json(std::initializer_list<const ConsoleLine*> lines) {
  nlohmann::json table = nlohmann::json::object();
  for (const auto* line : lines) {
    table[std::string(line->name)] = {{"format", line->format}, {"pattern", line->pattern}};
  }
  return table.dump(2);
}

}  // namespace lpk::tunnel
