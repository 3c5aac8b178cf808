#pragma once
// A container's environment as the kubelet computes it (makeEnvironmentVariables in
// k/k pkg/kubelet/kubelet_pods.go): envFrom, then env with $(VAR) expansion and valueFrom,
// then service link variables for names not yet set. Pure.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lpk::kubesim {

using json = nlohmann::json;
using EnvList = std::vector<std::pair<std::string, std::string>>;

/// A required configMap/secret key is missing: the kubelet's CreateContainerConfigError.
class EnvError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EnvInputs {
  /// (plural "configmaps"|"secrets", name) -> object in the pod's namespace.
  std::function<std::optional<json>(const std::string&, const std::string&)> lookup;
  /// Services whose link variables apply: the pod's namespace (when enableServiceLinks)
  /// and default/kubernetes. Only those with a ClusterIP produce variables.
  std::vector<json> services;
  /// Node allocatable, for resourceFieldRef without a limit ("cpu" -> "2").
  std::map<std::string, std::string> allocatable = {
      {"cpu", "2"}, {"memory", "4Gi"}, {"ephemeral-storage", "20Gi"}};
};

EnvList container_env(const json& pod, const json& container, const EnvInputs& in);

/// The image's ENV with the container's environment over it, as containerd merges them
/// (replaceOrAppendEnvValues): a name both set keeps the image's place and takes the
/// container's value; the container's other names follow in their order.
EnvList with_image_env(const EnvList& image, EnvList container);

/// $(VAR) expansion with $$ escaping; unknown references are left as written.
std::string expand_vars(const std::string& s,
                        const std::function<std::optional<std::string>(const std::string&)>& get);

/// The {SVC}_SERVICE_HOST... variables for services (k/k pkg/kubelet/envvars).
EnvList service_link_env(const std::vector<json>& services);

/// The value of a downward API fieldPath for a pod; throws EnvError for unsupported paths.
std::string pod_field(const json& pod, const std::string& path);

/// ceil(quantity / divisor) as a string, as convertResourceCPUToString and friends do.
std::string resource_field(const json& container, const json& ref,
                           const std::map<std::string, std::string>& allocatable);

/// Parses a Kubernetes quantity ("500m", "1Gi", "2") into a double; nullopt when invalid.
std::optional<double> parse_quantity(const std::string& q);

}  // namespace lpk::kubesim
