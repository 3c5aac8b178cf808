#pragma once
// Helpers for the kube tests: the clean environment a kubeconfig test starts from.
// (The temporary directory is tests/temp_dir.hpp.)
#include <optional>
#include <string>

#include "tests/scoped_env.hpp"

namespace lpk::kube::test {

using lpk::test::ScopedEnv;

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
