#include "tools/kubesim/irsa.hpp"

#include <algorithm>
#include <set>
#include <sstream>

namespace lpk::kubesim {

namespace {

const char* kPrefix = "eks.amazonaws.com/";
const char* kVolume = "aws-iam-token";

std::string annotation(const json& obj, const std::string& key) {
  const json& a = obj["metadata"].value("annotations", json::object());
  auto it = a.find(std::string(kPrefix) + key);
  return it != a.end() && it->is_string() ? it->get<std::string>() : "";
}

std::set<std::string> skipped_containers(const json& pod) {
  std::set<std::string> out;
  std::stringstream ss(annotation(pod, "skip-containers"));
  for (std::string name; std::getline(ss, name, ',');) {
    name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
    if (!name.empty()) out.insert(name);
  }
  return out;
}

// The webhook leaves a container alone when it already has the variables or the mount.
bool already_set(const json& c, const std::string& mount_path) {
  for (const auto& e : c.value("env", json::array())) {
    std::string n = e.value("name", "");
    if (n == "AWS_ROLE_ARN" || n == "AWS_WEB_IDENTITY_TOKEN_FILE") return true;
  }
  for (const auto& m : c.value("volumeMounts", json::array())) {
    if (m.value("mountPath", "") == mount_path) return true;
  }
  return false;
}

void add_to_container(json& c, const std::string& role, bool regional, const IrsaOptions& o) {
  json& env = c["env"];
  if (regional) env.push_back({{"name", "AWS_STS_REGIONAL_ENDPOINTS"}, {"value", "regional"}});
  if (!o.region.empty()) {
    env.push_back({{"name", "AWS_DEFAULT_REGION"}, {"value", o.region}});
    env.push_back({{"name", "AWS_REGION"}, {"value", o.region}});
  }
  env.push_back({{"name", "AWS_ROLE_ARN"}, {"value", role}});
  env.push_back({{"name", "AWS_WEB_IDENTITY_TOKEN_FILE"}, {"value", o.mount_path + "/token"}});
  c["volumeMounts"].push_back({{"name", kVolume}, {"readOnly", true}, {"mountPath", o.mount_path}});
}

}  // namespace

void admit_irsa(json& pod, const json& sa, const IrsaOptions& opts) {
  std::string role = annotation(sa, "role-arn");
  if (role.empty()) return;
  json& spec = pod["spec"];
  for (const auto& v : spec.value("volumes", json::array())) {
    if (v.value("name", "") == kVolume) return;
  }
  std::string audience = annotation(sa, "audience");
  if (audience.empty()) audience = opts.audience;
  bool regional = opts.regional_sts || annotation(sa, "sts-regional-endpoints") == "true";
  int64_t expiration = opts.expiration;
  std::string exp_text = annotation(sa, "token-expiration");
  if (!exp_text.empty()) {
    // The webhook clamps the account's value to [3600, 86400] seconds.
    expiration = std::clamp<int64_t>(std::atoll(exp_text.c_str()), 3600, 86400);
  }
  auto skip = skipped_containers(pod);
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (auto& c : spec[list]) {
      if (!skip.count(c.value("name", "")) && !already_set(c, opts.mount_path))
        add_to_container(c, role, regional, opts);
    }
  }
  json volume = {{"name", kVolume},
                 {"projected",
                  {{"defaultMode", 420},
                   {"sources",
                    {{{"serviceAccountToken",
                       {{"audience", audience},
                        {"expirationSeconds", expiration},
                        {"path", "token"}}}}}}}}};
  json volumes = json::array({volume});
  for (const auto& v : spec.value("volumes", json::array())) volumes.push_back(v);
  spec["volumes"] = volumes;
}

}  // namespace lpk::kubesim
