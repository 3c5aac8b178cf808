#pragma once
// The REST verbs on the store, without HTTP: decoding and checking bodies, admission,
// patches, garbage collection of dependents. Throws ApiError with the Status a real
// apiserver would send. Single-threaded.

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/kubesim/admission.hpp"
#include "tools/kubesim/routes.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

using json = nlohmann::json;

struct ListResult {
  std::vector<json> items;
  std::string resource_version;
};

/// The fields ?fieldSelector= accepts for a type (lists and watches alike).
std::vector<std::string> selectable_fields(const ResourceType& t);

/// What a PATCH's query says beyond its body (server-side apply reads all three).
struct PatchOptions {
  std::string field_manager;  // ?fieldManager=, else the User-Agent's program
  bool force = false;         // ?force=true
  bool strict = false;        // ?fieldValidation=Strict
};

class Rest {
 public:
  Rest(Store& store, AdmitOptions opts);

  json get(const Route& r) const;
  /// label_selector and field_selector in query syntax; throws 400 on bad syntax.
  ListResult list(const ResourceType& t, const std::string& ns, const std::string& label_selector,
                  const std::string& field_selector) const;
  /// body is the raw request body. strict: fieldValidation=Strict. Unknown fields are
  /// appended to warnings otherwise.
  /// manager: who writes, recorded in managedFields (operation Update).
  json create(const Route& r, const std::string& body, bool strict,
              std::vector<std::string>& warnings, const std::string& manager);
  json update(const Route& r, const std::string& body, bool strict,
              std::vector<std::string>& warnings, const std::string& manager);
  /// application/apply-patch+yaml is server-side apply (apply.hpp): it creates a missing
  /// object and throws 409 on conflicts with other field managers.
  json patch(const Route& r, const std::string& content_type, const std::string& body,
             const PatchOptions& opts, std::vector<std::string>& warnings);
  /// Deletes the object and, unless orphan, everything it owns (ownerReferences).
  json remove(const Route& r, bool orphan);

  /// Creates an object built by a controller (already a JSON object); a non-empty manager
  /// is recorded in managedFields.
  json create_object(const ResourceType& t, json obj, const std::string& manager = "");
  /// Writes an object built by a controller, status included when status_only.
  json update_object(const ResourceType& t, json obj, bool status_only = false);

  /// When set and it returns true for a pod, deleting that pod only marks it
  /// (deletionTimestamp) and the runtime removes it once its processes ended.
  std::function<bool(const json& pod)> graceful_pod_delete;

  Store& store() { return store_; }
  /// What admission does, set up by the cluster before it serves.
  AdmitOptions& admit_options() { return opts_; }

 private:
  json decode(const Route& r, const std::string& body, bool strict,
              std::vector<std::string>& warnings) const;
  json write_update(const Route& r, json obj, const json& old, const std::string& manager);
  json server_side_apply(const Route& r, const std::string& body, const PatchOptions& opts,
                         std::vector<std::string>& warnings);
  void collect_dependents(const std::string& uid, bool orphan);

  Store& store_;
  AdmitOptions opts_;
};

}  // namespace lpk::kubesim
