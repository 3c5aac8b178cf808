#pragma once
// Environment variables set (or unset) for one test and put back when it ends.
#include <stdlib.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lpk::test {

/// Sets (or with nullopt unsets) variables; restores the old values when destroyed.
class ScopedEnv {
 public:
  ScopedEnv(const std::string& name, const std::optional<std::string>& value) { set(name, value); }
  ScopedEnv(std::initializer_list<std::pair<std::string, std::optional<std::string>>> vars) {
    for (const auto& [k, v] : vars) set(k, v);
  }
  void set(const std::string& k, const std::optional<std::string>& v) {
    const char* old = ::getenv(k.c_str());
    saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
    if (v)
      ::setenv(k.c_str(), v->c_str(), 1);
    else
      ::unsetenv(k.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second)
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      else
        ::unsetenv(it->first.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace lpk::test
