#include "dns/detail/wire.hpp"

namespace lpk::dns::detail {

std::optional<std::size_t> read_question_name(Bytes msg, std::size_t pos, std::string& lower) {
  std::size_t total = 0;
  while (pos < msg.size()) {
    const std::uint8_t len = msg[pos];
    if (len == 0) {
      lower.push_back('\0');
      return pos + 1;
    }
    if (len > 63) return std::nullopt;  // compression or reserved label types
    total += len + 1u;
    if (total + 1 > kMaxNameWire || pos + 1 + len > msg.size()) return std::nullopt;
    lower.push_back(static_cast<char>(len));
    for (std::size_t i = pos + 1; i <= pos + len; ++i) {
      const std::uint8_t c = msg[i];
      lower.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    }
    pos += len + 1u;
  }
  return std::nullopt;
}

std::optional<std::size_t> skip_name(Bytes msg, std::size_t pos) {
  for (int labels = 0; pos < msg.size() && labels < 128; ++labels) {
    const std::uint8_t len = msg[pos];
    if (len == 0) return pos + 1;
    if ((len & 0xC0) == 0xC0) {
      if (pos + 2 > msg.size()) return std::nullopt;
      return pos + 2;
    }
    if (len > 63) return std::nullopt;
    pos += len + 1u;
  }
  return std::nullopt;
}

std::optional<std::size_t> skip_record(Bytes msg, std::size_t pos) {
  auto after_name = skip_name(msg, pos);
  if (!after_name || *after_name + 10 > msg.size()) return std::nullopt;
  const std::size_t end = *after_name + 10 + get16(msg.data() + *after_name + 8);
  if (end > msg.size()) return std::nullopt;
  return end;
}

std::optional<std::string> to_wire(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out;
  while (!name.empty()) {
    const auto dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) return std::nullopt;
    out.push_back(static_cast<char>(label.size()));
    for (char c : label) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  out.push_back('\0');
  if (out.size() > kMaxNameWire) return std::nullopt;
  return out;
}

std::string to_presentation(std::string_view wire) {
  std::string out;
  std::size_t pos = 0;
  while (pos < wire.size() && wire[pos] != '\0') {
    const auto len = static_cast<std::uint8_t>(wire[pos]);
    out.append(wire.substr(pos + 1, len));
    out.push_back('.');
    pos += len + 1u;
  }
  return out.empty() ? "." : out;
}

int label_count(std::string_view wire) {
  int n = 0;
  for (std::size_t pos = 0; pos < wire.size() && wire[pos] != '\0';
       pos += static_cast<std::uint8_t>(wire[pos]) + 1u) {
    ++n;
  }
  return n;
}

std::string_view strip_labels(std::string_view wire, int n) {
  std::size_t pos = 0;
  for (; n > 0 && pos < wire.size() && wire[pos] != '\0'; --n) {
    pos += static_cast<std::uint8_t>(wire[pos]) + 1u;
  }
  return wire.substr(pos);
}

bool is_subdomain(std::string_view wire, std::string_view suffix) {
  const int extra = label_count(wire) - label_count(suffix);
  return extra >= 0 && strip_labels(wire, extra) == suffix;
}

}  // namespace lpk::dns::detail
