// libFuzzer target for what lpk::kube parses from outside: kubeconfig files (YAML a user or a
// tool wrote), and the API server's answers (watch lines, Status bodies, ExecCredentials from a
// plugin). The first byte picks the parser; the rest is its input. None may crash or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kube/config.hpp"
#include "kube/detail/exec_plugin.hpp"
#include "kube/detail/kubeconfig.hpp"
#include "kube/detail/status.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using namespace lpk::kube;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      try {
        auto k = detail::parse_kubeconfig(in, "/fuzz/dir/config");
        detail::Kubeconfig merged;
        detail::merge_kubeconfig(merged, std::move(k));
      } catch (const ConfigError&) {
      }
      break;
    }
    case 1: {
      std::string error;
      auto w = detail::parse_watch_line(in, error);
      if (!w && error.empty()) __builtin_trap();  // a rejection always says why
      break;
    }
    case 2: {
      ApiError e = detail::api_error(403, in, "patch", "/apis/apps/v1/namespaces/d/deployments/w",
                                     "fuzz");
      if (std::string_view(e.what()).find('\n') != std::string_view::npos) __builtin_trap();
      detail::parse_api_path(in);
      break;
    }
    case 3: {
      ExecConfig x;
      x.api_version = "client.authentication.k8s.io/v1";
      x.command = "plugin";
      try {
        detail::parse_exec_credential(in, x);
      } catch (const ConfigError&) {
      }
      detail::parse_rfc3339(in);
      break;
    }
  }
  return 0;
}
