#pragma once
// Helpers for the kube tests: environment variables set for one test and restored after it.
// (The temporary directory is tests/temp_dir.hpp.)
#include <stdlib.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lpk::kube::test {

/// Sets (or with nullopt unsets) variables; restores the old values when destroyed.
class ScopedEnv {
 public:
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

/// The environment a loading test starts from: no KUBECONFIG, no in-cluster variables, HOME in
/// an empty directory, no proxies.
inline ScopedEnv clean_env(const std::string& home) {
  return ScopedEnv{{"KUBECONFIG", std::nullopt},
                   {"HOME", home},
                   {"KUBERNETES_SERVICE_HOST", std::nullopt},
                   {"KUBERNETES_SERVICE_PORT", std::nullopt},
                   {"KUBERNETES_MASTER", std::nullopt},
                   {"POD_NAMESPACE", std::nullopt},
                   {"LPK_SERVICEACCOUNT_DIR", std::nullopt},
                   {"HTTPS_PROXY", std::nullopt},
                   {"https_proxy", std::nullopt},
                   {"HTTP_PROXY", std::nullopt},
                   {"http_proxy", std::nullopt},
                   {"NO_PROXY", std::nullopt},
                   {"no_proxy", std::nullopt}};
}

}  // namespace lpk::kube::test
