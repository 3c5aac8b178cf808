#include "tools/kubesim/tables.hpp"

#include <ctime>

namespace lpk::kubesim {

namespace {

struct Column {
  const char* name;
  const char* type;
  int priority;
};

std::string join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string selector_text(const json& sel) {
  std::vector<std::string> parts;
  const json& ml = sel.contains("matchLabels") ? sel["matchLabels"] : sel;
  if (ml.is_object()) {
    for (const auto& [k, v] : ml.items()) {
      if (v.is_string()) parts.push_back(k + "=" + v.get<std::string>());
    }
  }
  return parts.empty() ? "<none>" : join(parts);
}

std::vector<std::string> container_field(const json& pod_spec, const char* field) {
  std::vector<std::string> out;
  if (pod_spec.contains("containers")) {
    for (const auto& c : pod_spec["containers"]) out.push_back(c.value(field, ""));
  }
  return out;
}

json pod_row(const json& p) {
  const json& st = p.value("status", json::object());
  int ready = 0, total = 0, restarts = 0;
  std::string status = st.value("phase", "Pending");
  for (const auto& c : st.value("containerStatuses", json::array())) {
    ++total;
    ready += c.value("ready", false) ? 1 : 0;
    restarts += c.value("restartCount", 0);
    if (c.contains("state") && c["state"].contains("waiting")) {
      status = c["state"]["waiting"].value("reason", status);
    }
    if (c.contains("state") && c["state"].contains("terminated") && status != "Succeeded") {
      status = c["state"]["terminated"].value("reason", status);
    }
  }
  if (total == 0) total = int(p["spec"].value("containers", json::array()).size());
  if (p["metadata"].contains("deletionTimestamp")) status = "Terminating";
  return {p["metadata"]["name"],
          std::to_string(ready) + "/" + std::to_string(total),
          status,
          restarts,
          human_age(p["metadata"].value("creationTimestamp", "")),
          st.value("podIP", "<none>"),
          p["spec"].value("nodeName", "<none>"),
          "<none>",
          "<none>"};
}

json service_row(const json& s) {
  std::vector<std::string> ports;
  for (const auto& p : s["spec"].value("ports", json::array())) {
    ports.push_back(std::to_string(p.value("port", 0)) + "/" + p.value("protocol", "TCP"));
  }
  return {s["metadata"]["name"],
          s["spec"].value("type", "ClusterIP"),
          s["spec"].value("clusterIP", "<none>"),
          "<none>",
          ports.empty() ? "<none>" : join(ports),
          human_age(s["metadata"].value("creationTimestamp", "")),
          selector_text(s["spec"].value("selector", json::object()))};
}

json endpoints_row(const json& e) {
  std::vector<std::string> eps;
  for (const auto& ss : e.value("subsets", json::array())) {
    for (const auto& a : ss.value("addresses", json::array())) {
      for (const auto& p : ss.value("ports", json::array())) {
        eps.push_back(a.value("ip", "") + ":" + std::to_string(p.value("port", 0)));
      }
    }
  }
  return {e["metadata"]["name"], eps.empty() ? "<none>" : join(eps),
          human_age(e["metadata"].value("creationTimestamp", ""))};
}

// printEndpointSlice: up to three port numbers (a name, else "*", for one without) and three
// addresses, "+ N more..." after them, "<unset>" for none.
json endpointslice_row(const json& s, const std::string& age) {
  auto list = [](const std::vector<std::string>& items) -> std::string {
    if (items.empty()) return "<unset>";
    std::vector<std::string> head(items.begin(), items.begin() + std::min<size_t>(3, items.size()));
    if (items.size() <= 3) return join(head);
    return join(head) + " + " + std::to_string(items.size() - 3) + " more...";
  };
  std::vector<std::string> ports, addresses;
  const json none = json::array();
  const json& ps = s.contains("ports") && s["ports"].is_array() ? s["ports"] : none;
  for (const auto& p : ps) {
    if (!p.is_object()) continue;
    ports.push_back(p.contains("port") && p["port"].is_number_integer()
                        ? std::to_string(p["port"].get<int>())
                        : p.value("name", "*"));
  }
  const json& eps = s.contains("endpoints") && s["endpoints"].is_array() ? s["endpoints"] : none;
  for (const auto& e : eps) {
    if (!e.is_object() || !e.contains("addresses") || !e["addresses"].is_array()) continue;
    for (const auto& a : e["addresses"]) {
      if (a.is_string()) addresses.push_back(a);
    }
  }
  return {s["metadata"]["name"], s.value("addressType", ""), list(ports), list(addresses), age};
}

json workload_row(const std::string& plural, const json& w) {
  const json& st = w.value("status", json::object());
  const json& tspec = w["spec"]["template"]["spec"];
  int want = w["spec"].value("replicas", 1);
  std::string age = human_age(w["metadata"].value("creationTimestamp", ""));
  std::string containers = join(container_field(tspec, "name"));
  std::string images = join(container_field(tspec, "image"));
  std::string sel = selector_text(w["spec"].value("selector", json::object()));
  std::string ready = std::to_string(st.value("readyReplicas", 0)) + "/" + std::to_string(want);
  if (plural == "deployments") {
    return {w["metadata"]["name"],
            ready,
            st.value("updatedReplicas", 0),
            st.value("availableReplicas", 0),
            age,
            containers,
            images,
            sel};
  }
  if (plural == "replicasets") {
    return {w["metadata"]["name"],
            want,
            st.value("replicas", 0),
            st.value("readyReplicas", 0),
            age,
            containers,
            images,
            sel};
  }
  return {w["metadata"]["name"], ready, age, containers, images};
}

std::vector<Column> columns_for(const std::string& plural) {
  if (plural == "pods") {
    return {{"Name", "string", 0},
            {"Ready", "string", 0},
            {"Status", "string", 0},
            {"Restarts", "string", 0},
            {"Age", "string", 0},
            {"IP", "string", 1},
            {"Node", "string", 1},
            {"Nominated Node", "string", 1},
            {"Readiness Gates", "string", 1}};
  }
  if (plural == "services") {
    return {{"Name", "string", 0},        {"Type", "string", 0},    {"Cluster-IP", "string", 0},
            {"External-IP", "string", 0}, {"Port(s)", "string", 0}, {"Age", "string", 0},
            {"Selector", "string", 1}};
  }
  if (plural == "endpoints")
    return {{"Name", "string", 0}, {"Endpoints", "string", 0}, {"Age", "string", 0}};
  if (plural == "endpointslices")
    return {{"Name", "string", 0}, {"AddressType", "string", 0}, {"Ports", "string", 0},
            {"Endpoints", "string", 0}, {"Age", "string", 0}};
  if (plural == "namespaces")
    return {{"Name", "string", 0}, {"Status", "string", 0}, {"Age", "string", 0}};
  if (plural == "deployments") {
    return {{"Name", "string", 0},       {"Ready", "string", 0},   {"Up-to-date", "integer", 0},
            {"Available", "integer", 0}, {"Age", "string", 0},     {"Containers", "string", 1},
            {"Images", "string", 1},     {"Selector", "string", 1}};
  }
  if (plural == "replicasets") {
    return {{"Name", "string", 0},   {"Desired", "integer", 0}, {"Current", "integer", 0},
            {"Ready", "integer", 0}, {"Age", "string", 0},      {"Containers", "string", 1},
            {"Images", "string", 1}, {"Selector", "string", 1}};
  }
  if (plural == "statefulsets") {
    return {{"Name", "string", 0},
            {"Ready", "string", 0},
            {"Age", "string", 0},
            {"Containers", "string", 1},
            {"Images", "string", 1}};
  }
  if (plural == "secrets") {
    return {
        {"Name", "string", 0}, {"Type", "string", 0}, {"Data", "string", 0}, {"Age", "string", 0}};
  }
  if (plural == "configmaps")
    return {{"Name", "string", 0}, {"Data", "string", 0}, {"Age", "string", 0}};
  if (plural == "events") {
    return {{"Last Seen", "string", 0}, {"Type", "string", 0},    {"Reason", "string", 0},
            {"Object", "string", 0},    {"Subobject", "string", 1}, {"Source", "string", 1},
            {"Message", "string", 0},   {"First Seen", "string", 1}, {"Count", "string", 1},
            {"Name", "string", 1}};
  }
  if (plural == "jobs") {
    return {{"Name", "string", 0}, {"Status", "string", 0}, {"Completions", "string", 0},
            {"Age", "string", 0}};
  }
  if (plural == "leases") return {{"Name", "string", 0}, {"Holder", "string", 0}, {"Age", "string", 0}};
  return {{"Name", "string", 0}, {"Age", "string", 0}};
}

// printJob: the finished condition's type, else Running.
json job_row(const json& o, const std::string& age) {
  std::string status = "Running";
  for (const auto& c : o.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("status", "") == "True") status = c.value("type", status);
  }
  const json& st = o.value("status", json::object());
  return {o["metadata"]["name"], status,
          std::to_string(st.value("succeeded", 0)) + "/" +
              std::to_string(o["spec"].value("completions", 1)),
          age};
}

json event_row(const json& o) {
  const json& io = o.value("involvedObject", json::object());
  std::string kind = io.value("kind", "");
  for (char& c : kind) c = char(std::tolower(static_cast<unsigned char>(c)));
  const json& src = o.value("source", json::object());
  std::string source = src.value("component", "");
  if (!src.value("host", "").empty()) source += ", " + src.value("host", "");
  return {human_age(o.value("lastTimestamp", "")),
          o.value("type", ""),
          o.value("reason", ""),
          kind + "/" + io.value("name", ""),
          io.value("fieldPath", ""),
          source,
          o.value("message", ""),
          human_age(o.value("firstTimestamp", "")),
          o.value("count", 1),
          o["metadata"].value("name", "")};
}

json row_cells(const std::string& plural, const json& o) {
  std::string age = human_age(o["metadata"].value("creationTimestamp", ""));
  if (plural == "pods") return pod_row(o);
  if (plural == "services") return service_row(o);
  if (plural == "endpoints") return endpoints_row(o);
  if (plural == "endpointslices") return endpointslice_row(o, age);
  if (plural == "namespaces")
    return {o["metadata"]["name"], o["status"].value("phase", "Active"), age};
  if (plural == "deployments" || plural == "replicasets" || plural == "statefulsets") {
    return workload_row(plural, o);
  }
  size_t data =
      o.value("data", json::object()).size() + o.value("binaryData", json::object()).size();
  if (plural == "secrets") return {o["metadata"]["name"], o.value("type", "Opaque"), data, age};
  if (plural == "configmaps") return {o["metadata"]["name"], data, age};
  if (plural == "events") return event_row(o);
  if (plural == "jobs") return job_row(o, age);
  if (plural == "leases") {
    return {o["metadata"]["name"], o.value("spec", json::object()).value("holderIdentity", ""),
            age};
  }
  return {o["metadata"]["name"], age};
}

}  // namespace

std::string human_age(const std::string& ts) {
  std::tm tm{};
  if (ts.empty() || !strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return "<unknown>";
  long secs = long(std::time(nullptr) - timegm(&tm));
  if (secs < 0) secs = 0;
  if (secs < 120) return std::to_string(secs) + "s";
  if (secs < 3600 * 3) return std::to_string(secs / 60) + "m";
  if (secs < 86400 * 2) return std::to_string(secs / 3600) + "h";
  return std::to_string(secs / 86400) + "d";
}

json make_table(const ResourceType& type, const std::vector<json>& objects,
                const std::string& resource_version, const std::string& include_object,
                bool with_columns) {
  json cols = json::array();
  if (with_columns) {
    for (const auto& c : columns_for(type.plural)) {
      cols.push_back({{"name", c.name},
                      {"type", c.type},
                      {"format", std::string(c.name) == "Name" ? "name" : ""},
                      {"description", ""},
                      {"priority", c.priority}});
    }
  }
  json rows = json::array();
  for (const auto& o : objects) {
    json row = {{"cells", row_cells(type.plural, o)}};
    if (include_object == "Object") {
      row["object"] = o;
    } else if (include_object != "None") {
      row["object"] = {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", o["metadata"]}};
    }
    rows.push_back(row);
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", {{"resourceVersion", resource_version}}},
          {"columnDefinitions", cols},
          {"rows", rows}};
}

}  // namespace lpk::kubesim
