#include "tools/kubesim/admission.hpp"

#include <random>
#include <regex>
#include <set>

#include "tools/kubesim/certs.hpp"
#include "tools/kubesim/jobs.hpp"
#include "tools/kubesim/serviceaccounts.hpp"
#include "tools/kubesim/status.hpp"
#include "kube/text.hpp"

namespace lpk::kubesim {

namespace {

const char* kSubdomainMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* kLabelMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

// k8s.io/apimachinery pkg/api/validation/path: IsValidPathSegmentName.
std::string path_segment_problem(const std::string& name) {
  if (name == "." || name == "..") return "may not be '" + name + "'";
  for (const char* bad : {"/", "%"}) {
    if (name.find(bad) != std::string::npos) return std::string("may not contain '") + bad + "'";
  }
  return "";
}

// k8s.io/apimachinery pkg/api/validation/objectmeta.go: ValidateAnnotationsSize counts every
// key and value; past TotalAnnotationSizeLimitB the object is refused with field.TooLong.
constexpr std::size_t kTotalAnnotationSizeLimitB = 256 * (1 << 10);

void validate_annotation_size(const std::string& kind, const json& meta, const std::string& name,
                              const std::string& field) {
  if (!meta.is_object() || !meta.contains("annotations") || !meta["annotations"].is_object()) {
    return;
  }
  std::size_t total = 0;
  for (const auto& [key, value] : meta["annotations"].items()) {
    total += key.size() + (value.is_string() ? value.get_ref<const std::string&>().size()
                                             : value.dump().size());
  }
  if (total > kTotalAnnotationSizeLimitB) {
    throw invalid(kind, name, field, "FieldValueTooLong",
                  "Too long: must have at most " + std::to_string(kTotalAnnotationSizeLimitB) +
                      " bytes");
  }
}

void set_default(json& obj, const char* key, const json& value) {
  if (!obj.contains(key) || obj[key].is_null()) obj[key] = value;
}

std::string random_suffix() {
  static std::mt19937 rng{std::random_device{}()};
  static const char* kChars = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (int i = 0; i < 5; ++i) s += kChars[rng() % 27];
  return s;
}

void default_container(json& c) {
  std::string image = c.value("image", "");
  bool latest = image.find(':') == std::string::npos ||
                (image.size() >= 7 && image.compare(image.size() - 7, 7, ":latest") == 0);
  set_default(c, "imagePullPolicy", latest ? "Always" : "IfNotPresent");
  set_default(c, "terminationMessagePath", "/dev/termination-log");
  set_default(c, "terminationMessagePolicy", "File");
  set_default(c, "resources", json::object());
  if (c.contains("ports") && c["ports"].is_array()) {
    for (auto& p : c["ports"]) set_default(p, "protocol", "TCP");
  }
}

std::string allocate_cluster_ip(const Store& store, const AdmitOptions& opts) {
  std::set<std::string> used;
  for (const auto& s : store.list("services")) {
    used.insert(s["spec"].value("clusterIP", ""));
  }
  // 1 and 10 are taken by kubernetes and kube-dns at start; start after them.
  for (uint32_t i = 20; i < 65000; ++i) {
    auto ip = opts.network.service_ip(i);
    if (ip && !used.count(*ip)) return *ip;
  }
  throw ApiError(500, "InternalError", "Internal error occurred: range is full");
}

ApiError invalid_service(const json& svc, const std::string& field, const std::string& why) {
  return invalid("Service", svc["metadata"].value("name", ""), field, "FieldValueInvalid",
                 "Invalid value: " + why);
}

bool headless_without_selector(const json& spec) {
  return spec.value("clusterIP", "") == "None" &&
         (!spec.contains("selector") || !spec["selector"].is_object() || spec["selector"].empty());
}

std::string text_or_empty(const json& value) {
  return value.is_string() ? value.get<std::string>() : "";
}

// Without a policy: the old one on an update, else SingleStack, except for a headless service
// without a selector (initIPFamilyFields below).
void default_ip_family_policy(json& spec, const std::optional<json>& old) {
  if (spec.contains("ipFamilyPolicy") && !spec["ipFamilyPolicy"].is_null()) return;
  if (old && (*old)["spec"].contains("ipFamilyPolicy")) {
    spec["ipFamilyPolicy"] = (*old)["spec"]["ipFamilyPolicy"];
  } else {
    spec["ipFamilyPolicy"] = headless_without_selector(spec) ? "RequireDualStack" : "SingleStack";
  }
}

// spec.ipFamilyPolicy and spec.ipFamilies as the apiserver sets them on a cluster of one
// family (initIPFamilyFields in k/k pkg/registry/core/service/storage/alloc.go): a family the
// cluster lacks, or a demand for dual-stack, is refused; a headless service without a selector
// is the one that may name both.
void default_ip_families(json& svc, const std::optional<json>& old, const ClusterNetwork& net) {
  json& spec = svc["spec"];
  default_ip_family_policy(spec, old);
  const std::string policy = text_or_empty(spec["ipFamilyPolicy"]);
  json families = spec.value("ipFamilies", json::array());
  if (!families.is_array()) families = json::array();
  const json ips = spec.value("clusterIPs", json::array());
  for (size_t i = families.size(); ips.is_array() && i < ips.size(); ++i) {
    std::string ip = text_or_empty(ips[i]);
    if (ip.empty() || ip == "None") break;
    std::string family = ClusterNetwork::family_of(ip);
    if (family != net.family_name()) {
      throw invalid_service(svc, "spec.clusterIPs[" + std::to_string(i) + "]",
                            ips.dump() + ": " + family + " is not configured on this cluster");
    }
    families.push_back(family);
  }
  if (headless_without_selector(spec)) {
    if (families.empty()) families.push_back(net.family_name());
    if (policy != "SingleStack" && families.size() < 2) {
      families.push_back(net.family() == IpFamily::ipv4 ? "IPv6" : "IPv4");
    }
    spec["ipFamilies"] = families;
    return;
  }
  if (policy == "RequireDualStack") {
    throw invalid_service(svc, "spec.ipFamilyPolicy",
                          "\"RequireDualStack\": this cluster is not configured for dual-stack "
                          "services");
  }
  for (size_t i = 0; i < families.size(); ++i) {
    if (families[i] != net.family_name()) {
      throw invalid_service(svc, "spec.ipFamilies[" + std::to_string(i) + "]",
                            families[i].dump() + ": not configured on this cluster");
    }
  }
  if (families.empty()) families.push_back(net.family_name());
  spec["ipFamilies"] = families;
}

void default_service(json& svc, const std::optional<json>& old, const Store& store,
                     const AdmitOptions& opts) {
  json& spec = svc["spec"];
  set_default(spec, "type", "ClusterIP");
  set_default(spec, "sessionAffinity", "None");
  set_default(spec, "internalTrafficPolicy", "Cluster");
  if (spec.contains("ports")) {
    for (auto& p : spec["ports"]) {
      set_default(p, "protocol", "TCP");
      if (p.contains("port")) set_default(p, "targetPort", p["port"]);
    }
  }
  if (old && (*old)["spec"].contains("clusterIP") && spec.value("clusterIP", "").empty()) {
    spec["clusterIP"] = (*old)["spec"]["clusterIP"];
  }
  if (spec.value("clusterIP", "").empty() && spec.contains("clusterIPs") &&
      spec["clusterIPs"].is_array() && !spec["clusterIPs"].empty()) {
    spec["clusterIP"] = spec["clusterIPs"][0];
  }
  if (!spec.value("clusterIP", "").empty()) spec["clusterIPs"] = {spec["clusterIP"]};
  // ExternalName services have neither addresses nor families.
  if (spec["type"] != "ExternalName") default_ip_families(svc, old, opts.network);
  if (spec.value("clusterIP", "").empty() && spec["type"] != "ExternalName") {
    spec["clusterIP"] = allocate_cluster_ip(store, opts);
    spec["clusterIPs"] = {spec["clusterIP"]};
  }
  set_default(svc, "status", {{"loadBalancer", json::object()}});
}

void default_workload(const std::string& plural, json& obj) {
  json& spec = obj["spec"];
  set_default(spec, "replicas", 1);
  set_default(spec, "revisionHistoryLimit", 10);
  if (plural == "deployments") {
    set_default(spec, "progressDeadlineSeconds", 600);
    set_default(spec, "strategy",
                {{"type", "RollingUpdate"},
                 {"rollingUpdate", {{"maxUnavailable", "25%"}, {"maxSurge", "25%"}}}});
  }
  if (plural == "statefulsets") {
    set_default(spec, "podManagementPolicy", "OrderedReady");
    set_default(spec, "updateStrategy",
                {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 0}}}});
  }
  if (spec.contains("template") && spec["template"].contains("spec")) {
    default_pod_spec(spec["template"]["spec"]);
  }
  if (plural == "replicasets") spec.erase("revisionHistoryLimit");
}

void validate_workload(const ResourceType& t, const json& obj, const std::string& name) {
  const json& spec = obj.contains("spec") ? obj["spec"] : json::object();
  if (!spec.contains("selector")) {
    throw invalid(t.kind, name, "spec.selector", "FieldValueRequired", "Required value");
  }
  json labels = obj["spec"]["template"]["metadata"].value("labels", json::object());
  json ml = spec["selector"].value("matchLabels", json::object());
  for (const auto& [k, v] : ml.items()) {
    if (!labels.contains(k) || labels[k] != v) {
      throw invalid(
          t.kind, name, "spec.template.metadata.labels", "FieldValueInvalid",
          "Invalid value: " + labels.dump() + ": `selector` does not match template `labels`");
    }
  }
  const json& cs = obj["spec"]["template"]["spec"]["containers"];
  if (!cs.is_array() || cs.empty()) {
    throw invalid(t.kind, name, "spec.template.spec.containers", "FieldValueRequired",
                  "Required value");
  }
}

void validate_pod(const json& pod, const std::string& name) {
  const json& cs = pod["spec"]["containers"];
  if (!cs.is_array() || cs.empty()) {
    throw invalid("Pod", name, "spec.containers", "FieldValueRequired", "Required value");
  }
  for (size_t i = 0; i < cs.size(); ++i) {
    std::string f = "spec.containers[" + std::to_string(i) + "]";
    if (cs[i].value("image", "").empty()) {
      throw invalid("Pod", name, f + ".image", "FieldValueRequired", "Required value");
    }
    std::string why = name_problem(cs[i].value("name", ""), true);
    if (!why.empty()) throw invalid("Pod", name, f + ".name", "FieldValueInvalid", why);
  }
}

void default_secret(json& s) {
  set_default(s, "type", "Opaque");
  if (s.contains("stringData") && s["stringData"].is_object()) {
    for (const auto& [k, v] : s["stringData"].items()) {
      s["data"][k] = text::base64_encode(v.is_string() ? v.get<std::string>() : v.dump());
    }
    s.erase("stringData");
  }
}

}  // namespace

std::string name_problem(const std::string& name, bool label) {
  static const std::regex kLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  static const std::regex kSubdomain(
      "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  std::string quoted = "Invalid value: \"" + name + "\": ";
  if (label) {
    if (name.size() > 63) return quoted + "must be no more than 63 characters";
    return std::regex_match(name, kLabel) ? "" : quoted + kLabelMsg;
  }
  if (name.size() > 253) return quoted + "must be no more than 253 characters";
  return std::regex_match(name, kSubdomain) ? "" : quoted + kSubdomainMsg;
}

void default_pod_spec(json& spec) {
  set_default(spec, "restartPolicy", "Always");
  set_default(spec, "dnsPolicy", "ClusterFirst");
  set_default(spec, "terminationGracePeriodSeconds", 30);
  set_default(spec, "schedulerName", "default-scheduler");
  set_default(spec, "securityContext", json::object());
  set_default(spec, "enableServiceLinks", true);
  if (spec.contains("containers") && spec["containers"].is_array()) {
    for (auto& c : spec["containers"]) default_container(c);
  }
}

json admit(const ResourceType& t, json obj, const std::optional<json>& old, const Store& store,
           const AdmitOptions& opts) {
  json& m = obj["metadata"];
  if (t.namespaced && !store.get("namespaces", "", m.value("namespace", ""))) {
    throw not_found("namespaces", m.value("namespace", ""));
  }
  // Mutating admission (the plugin, then the webhook) runs before the registry generates the
  // name, as the apiserver's create handler does: a refused pod of a ReplicaSet is named by
  // its generateName, so the controller's retries repeat one FailedCreate event.
  if (t.plural == "pods" && !old) {
    admit_service_account(obj, store, opts.ensure_default_service_account);
    auto sa = store.get("serviceaccounts", m.value("namespace", ""),
                        obj["spec"].value("serviceAccountName", ""));
    if (sa) admit_irsa(obj, *sa, opts.irsa);
  }
  if (!old && m.value("name", "").empty() && !m.value("generateName", "").empty()) {
    m["name"] = m["generateName"].get<std::string>() + random_suffix();
  }
  std::string name = m.value("name", "");
  if (name.empty()) {
    throw invalid(t.kind, "", "metadata.name", "FieldValueRequired",
                  "Required value: name or generateName is required");
  }
  // RBAC objects only need to be path segments (ValidateRBACName is path.ValidatePathSegmentName).
  std::string why = t.group == "rbac.authorization.k8s.io" ? path_segment_problem(name)
                                                            : name_problem(name, t.dns_label_name);
  if (!why.empty()) throw invalid(t.kind, name, "metadata.name", "FieldValueInvalid", why);
  validate_annotation_size(t.kind, m, name, "metadata.annotations");
  if (const json::json_pointer tm("/spec/template/metadata"); obj.contains(tm)) {
    validate_annotation_size(t.kind, obj.at(tm), name, "spec.template.metadata.annotations");
  }
  if (t.plural == "pods") {
    validate_pod(obj, name);
    default_pod_spec(obj["spec"]);
    if (!old) obj["status"] = {{"phase", "Pending"}, {"qosClass", "BestEffort"}};
  } else if (t.plural == "services") {
    default_service(obj, old, store, opts);
  } else if (t.plural == "deployments" || t.plural == "replicasets" || t.plural == "statefulsets") {
    validate_workload(t, obj, name);
    default_workload(t.plural, obj);
  } else if (t.plural == "jobs") {
    admit_job(obj, old);
  } else if (t.plural == "secrets") {
    default_secret(obj);
  } else if (t.plural == "namespaces") {
    m["labels"]["kubernetes.io/metadata.name"] = name;
    obj["spec"] = {{"finalizers", {"kubernetes"}}};
    if (!old) obj["status"] = {{"phase", "Active"}};
  }
  return obj;
}

// Top-level fields of the kinds that have no spec.
static const std::set<std::string>& kind_fields(const ResourceType& t) {
  static const std::set<std::string> kNone, kRole = {"rules", "aggregationRule"},
                                            kBinding = {"subjects", "roleRef"},
                                            kAccount = {"secrets", "imagePullSecrets",
                                                        "automountServiceAccountToken"};
  if (t.plural == "roles" || t.plural == "clusterroles") return kRole;
  if (t.plural == "rolebindings" || t.plural == "clusterrolebindings") return kBinding;
  static const std::set<std::string> kEvent = {
      "involvedObject", "reason",  "message",   "source", "firstTimestamp", "lastTimestamp",
      "count",          "type",    "eventTime", "series", "action",         "related",
      "reportingComponent", "reportingInstance"};
  if (t.plural == "serviceaccounts") return kAccount;
  if (t.plural == "events") return kEvent;
  return kNone;
}

std::vector<std::string> unknown_fields(const ResourceType& t, const json& obj) {
  static const std::set<std::string> kTop = {
      "apiVersion", "kind", "metadata",  "spec",    "status",    "data",        "binaryData",
      "stringData", "type", "immutable", "subsets", "endpoints", "addressType", "ports"};
  static const std::set<std::string> kMeta = {"name",
                                              "generateName",
                                              "namespace",
                                              "uid",
                                              "resourceVersion",
                                              "generation",
                                              "creationTimestamp",
                                              "deletionTimestamp",
                                              "deletionGracePeriodSeconds",
                                              "labels",
                                              "annotations",
                                              "ownerReferences",
                                              "finalizers",
                                              "managedFields",
                                              "selfLink"};
  std::vector<std::string> out;
  if (!obj.is_object()) return out;
  for (const auto& [k, v] : obj.items()) {
    if (!kTop.count(k) && !kind_fields(t).count(k)) out.push_back(k);
  }
  if (obj.contains("metadata") && obj["metadata"].is_object()) {
    for (const auto& [k, v] : obj["metadata"].items()) {
      if (!kMeta.count(k)) out.push_back("metadata." + k);
    }
  }
  return out;
}

}  // namespace lpk::kubesim
