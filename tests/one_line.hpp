#pragma once
#include <string>

namespace lpk::test {

/// Whether an error message is the one line lpk promises: not empty, no newline.
inline bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

}  // namespace lpk::test
