#pragma once
// Service accounts as the apiserver and controller manager keep them:
// - the ServiceAccount admission plugin (k/k plugin/pkg/admission/serviceaccount/admission.go):
//   a created Pod gets serviceAccountName "default" when it names none, is refused (403) when
//   its account does not exist, and unless automounting is off on the pod or the account gets
//   the projected volume kube-api-access-<5 chars> (a 3607 s token, the kube-root-ca.crt
//   configMap's ca.crt, the namespace) mounted read-only at
//   /var/run/secrets/kubernetes.io/serviceaccount in every container and init container that
//   has nothing mounted there;
// - the serviceaccounts controller and the root-ca-cert-publisher, which keep a "default"
//   ServiceAccount and the "kube-root-ca.crt" ConfigMap in every namespace.

#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;
class Rest;

inline constexpr const char* kServiceAccountMountPath =
    "/var/run/secrets/kubernetes.io/serviceaccount";
inline constexpr const char* kRootCaConfigMap = "kube-root-ca.crt";

/// Mutates a pod being created. ensure_default(ns) is called when the "default" account is
/// missing (the plugin waits for the controller to make it); it may create it. Throws the
/// plugin's 403 when the account is missing still.
void admit_service_account(json& pod, const Store& store,
                           const std::function<void(const std::string&)>& ensure_default);

/// Five characters of the alphabet Kubernetes uses for generated names.
std::string generated_suffix();

/// The two controllers: after any namespace appears, or its default account or root CA
/// configMap goes, they (re)create them, one turn of the loop later, as real controllers
/// do. ensure() does it for one namespace at once.
class NamespaceDefaults {
 public:
  NamespaceDefaults(boost::asio::io_context& io, Rest& rest, std::string ca_pem);
  ~NamespaceDefaults();
  void start();
  void stop();
  void ensure(const std::string& ns);

 private:
  void schedule();
  void ensure_all();

  boost::asio::io_context& io_;
  Rest& rest_;
  std::string ca_pem_;
  int listener_ = -1;
  bool scheduled_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace lpk::kubesim
