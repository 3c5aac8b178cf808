#include "kube/config.hpp"

namespace lpk::kube {
RestConfig load_config(const LoadOptions&) { throw ConfigError("kube: load_config not built yet"); }
std::optional<RestConfig> in_cluster_config() { return std::nullopt; }
}  // namespace lpk::kube
