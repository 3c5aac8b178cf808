#pragma once
// Bytes written as hex in tests and fixtures ("8286 8441", whitespace ignored).

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace lpk::test {

inline std::string from_hex(std::string_view hex) {
  std::string out;
  int high = -1;
  for (char c : hex) {
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) continue;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high << 4 | v));
      high = -1;
    }
  }
  return out;
}

/// A hex file's bytes, empty when it cannot be read.
inline std::string read_hex_file(const std::string& path) {
  std::ifstream in(path);
  return from_hex(std::string(std::istreambuf_iterator<char>(in), {}));
}

}  // namespace lpk::test
