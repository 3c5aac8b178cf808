#include "tools/kubesim/jobs.hpp"

#include "tools/kubesim/admission.hpp"
#include "tools/kubesim/status.hpp"
#include "tools/kubesim/store.hpp"

namespace lpk::kubesim {

namespace job_strategy {  // named: the unity build puts admission.cpp's helpers beside it

void set_default(json& obj, const char* key, const json& value) {
  if (!obj.contains(key) || obj[key].is_null()) obj[key] = value;
}

// generateSelector: without spec.manualSelector the apiserver owns the selector and labels
// the template with the Job's uid and name, in the new and the legacy spelling.
void generate_selector(json& job) {
  const json& meta = job["metadata"];
  std::string uid = meta.value("uid", ""), name = meta.value("name", "");
  json& labels = job["spec"]["template"]["metadata"]["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[kJobControllerUidLabel] = uid;
  labels[kJobNameLabel] = name;
  labels["controller-uid"] = uid;
  labels["job-name"] = name;
  job["spec"]["selector"] = {{"matchLabels", {{kJobControllerUidLabel, uid}}}};
}

}  // namespace job_strategy

using job_strategy::generate_selector;
using job_strategy::set_default;

void admit_job(json& job, const std::optional<json>& old) {
  std::string name = job["metadata"].value("name", "");
  json& spec = job["spec"];
  if (!spec.is_object() || !spec.contains("template") || !spec["template"].is_object()) {
    throw invalid("Job", name, "spec.template", "FieldValueRequired", "Required value");
  }
  json& pod_spec = spec["template"]["spec"];
  std::string policy = pod_spec.is_object() ? pod_spec.value("restartPolicy", "") : "";
  if (policy != "OnFailure" && policy != "Never") {
    throw invalid("Job", name, "spec.template.spec.restartPolicy", "FieldValueNotSupported",
                  "Unsupported value: \"" + (policy.empty() ? "Always" : policy) +
                      "\": supported values: \"OnFailure\", \"Never\"");
  }
  set_default(spec, "parallelism", 1);
  set_default(spec, "completions", 1);
  set_default(spec, "backoffLimit", 6);
  set_default(spec, "completionMode", "NonIndexed");
  set_default(spec, "suspend", false);
  set_default(spec, "podReplacementPolicy", "TerminatingOrFailed");
  default_pod_spec(pod_spec);
  if (old) {
    // The selector and the template's generated labels are immutable.
    spec["selector"] = (*old)["spec"]["selector"];
    spec["template"]["metadata"]["labels"] = (*old)["spec"]["template"]["metadata"]["labels"];
    job["metadata"]["uid"] = (*old)["metadata"]["uid"];
    return;
  }
  job["metadata"]["uid"] = new_uid();
  if (!spec.value("manualSelector", false)) generate_selector(job);
  job["status"] = json::object();
}

}  // namespace lpk::kubesim
