#include "tools/kubesim/serviceaccounts.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "tools/kubesim/rest.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

namespace {

const char* kVolumePrefix = "kube-api-access-";
const char* kRootCaDescription =
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters.";

// The projected source of TokenVolumeSource() in the plugin, defaultMode set explicitly.
json token_volume(const std::string& name) {
  return {{"name", name},
          {"projected",
           {{"defaultMode", 420},
            {"sources",
             {{{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}},
              {{"configMap",
                {{"name", kRootCaConfigMap},
                 {"items", {{{"key", "ca.crt"}, {"path", "ca.crt"}}}}}}},
              {{"downwardAPI",
                {{"items",
                  {{{"path", "namespace"},
                    {"fieldRef",
                     {{"apiVersion", "v1"}, {"fieldPath", "metadata.namespace"}}}}}}}}}}}}}};
}

bool should_automount(const json& sa, const json& pod) {
  const json& spec = pod["spec"];
  if (spec.contains("automountServiceAccountToken") &&
      spec["automountServiceAccountToken"].is_boolean()) {
    return spec["automountServiceAccountToken"].get<bool>();
  }
  if (sa.contains("automountServiceAccountToken") && sa["automountServiceAccountToken"].is_boolean())
    return sa["automountServiceAccountToken"].get<bool>();
  return true;
}

// Adds the mount to every container of the list that has nothing at the path; true if any.
bool mount_in(json& containers, const std::string& volume) {
  if (!containers.is_array()) return false;
  bool added = false;
  for (auto& c : containers) {
    bool taken = false;
    for (const auto& m : c.value("volumeMounts", json::array())) {
      if (m.value("mountPath", "") == kServiceAccountMountPath) taken = true;
    }
    if (taken) continue;
    c["volumeMounts"].push_back(
        {{"name", volume}, {"readOnly", true}, {"mountPath", kServiceAccountMountPath}});
    added = true;
  }
  return added;
}

void mount_token(json& pod) {
  json& spec = pod["spec"];
  std::string volume;
  for (const auto& v : spec.value("volumes", json::array())) {
    if (v.value("name", "").rfind(kVolumePrefix, 0) == 0) volume = v["name"];
  }
  bool existing = !volume.empty();
  if (!existing) volume = kVolumePrefix + generated_suffix();
  bool needed = mount_in(spec["initContainers"], volume);
  if (spec["initContainers"].is_null()) spec.erase("initContainers");
  needed = mount_in(spec["containers"], volume) || needed;
  if (needed && !existing) spec["volumes"].push_back(token_volume(volume));
}

}  // namespace

std::string generated_suffix() {
  static std::mt19937 rng{std::random_device{}()};
  static const char* kChars = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (int i = 0; i < 5; ++i) s += kChars[rng() % 27];
  return s;
}

void admit_service_account(json& pod, const Store& store,
                           const std::function<void(const std::string&)>& ensure_default) {
  json& spec = pod["spec"];
  std::string ns = pod["metadata"].value("namespace", "");
  std::string name = spec.value("serviceAccountName", "");
  if (name.empty()) name = spec.value("serviceAccount", "");
  if (name.empty()) name = "default";
  spec["serviceAccountName"] = name;
  spec["serviceAccount"] = name;  // the deprecated field, defaulted from the new one
  auto sa = store.get("serviceaccounts", ns, name);
  if (!sa && name == "default" && ensure_default) {
    ensure_default(ns);
    sa = store.get("serviceaccounts", ns, name);
  }
  if (!sa) {
    std::string pod_name = pod["metadata"].value("name", "");
    if (pod_name.empty()) pod_name = pod["metadata"].value("generateName", "Unknown");
    throw forbidden("pods", pod_name,
                    "error looking up service account " + ns + "/" + name + ": serviceaccount \"" +
                        name + "\" not found");
  }
  if (should_automount(*sa, pod)) mount_token(pod);
  if (!spec.contains("imagePullSecrets") && sa->contains("imagePullSecrets")) {
    spec["imagePullSecrets"] = (*sa)["imagePullSecrets"];
  }
}

NamespaceDefaults::NamespaceDefaults(boost::asio::io_context& io, Rest& rest, std::string ca_pem)
    : io_(io), rest_(rest), ca_pem_(std::move(ca_pem)) {}

NamespaceDefaults::~NamespaceDefaults() { stop(); }

void NamespaceDefaults::start() {
  listener_ = rest_.store().add_listener([this](const WatchEvent& ev) {
    bool ours = ev.resource == "namespaces" ||
                (ev.type == "DELETED" && (ev.resource == "serviceaccounts" ||
                                          ev.resource == "configmaps"));
    if (ours) schedule();
  });
  ensure_all();
}

void NamespaceDefaults::stop() {
  *alive_ = false;
  if (listener_ >= 0) rest_.store().remove_listener(listener_);
  listener_ = -1;
}

void NamespaceDefaults::schedule() {
  if (scheduled_) return;
  scheduled_ = true;
  boost::asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    scheduled_ = false;
    ensure_all();
  });
}

void NamespaceDefaults::ensure_all() {
  for (const auto& ns : rest_.store().list("namespaces")) {
    try {
      ensure(ns["metadata"]["name"]);
    } catch (const std::exception& e) {
      spdlog::debug("kubesim: namespace defaults: {}", e.what());
    }
  }
}

void NamespaceDefaults::ensure(const std::string& ns) {
  auto n = rest_.store().get("namespaces", "", ns);
  if (!n || (*n)["metadata"].contains("deletionTimestamp")) return;
  if (!rest_.store().get("serviceaccounts", ns, "default")) {
    rest_.create_object(
        resource_by_plural("serviceaccounts"),
        {{"apiVersion", "v1"},
         {"kind", "ServiceAccount"},
         {"metadata", {{"name", "default"}, {"namespace", ns}}}});
  }
  auto cm = rest_.store().get("configmaps", ns, kRootCaConfigMap);
  if (!cm) {
    rest_.create_object(
        resource_by_plural("configmaps"),
        {{"apiVersion", "v1"},
         {"kind", "ConfigMap"},
         {"metadata",
          {{"name", kRootCaConfigMap},
           {"namespace", ns},
           {"annotations", {{"kubernetes.io/description", kRootCaDescription}}}}},
         {"data", {{"ca.crt", ca_pem_}}}});
  } else if ((*cm)["data"].value("ca.crt", "") != ca_pem_) {
    json fixed = *cm;
    fixed["data"]["ca.crt"] = ca_pem_;
    fixed["metadata"].erase("resourceVersion");
    rest_.update_object(resource_by_plural("configmaps"), fixed);
  }
}

}  // namespace lpk::kubesim
