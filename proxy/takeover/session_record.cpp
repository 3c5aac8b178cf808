#include "proxy/takeover/session_record.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "proxy/control/session_paths.hpp"

namespace lpk::proxy {

using nlohmann::json;

namespace {

std::string host_name() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
  return buffer;
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

/// Fields of /proc/PID/stat after the command: [0] is the state (R, S, Z...), [19] the start
/// time in clock ticks since boot. Empty when the process does not exist.
std::vector<std::string> proc_stat(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');  // the command may hold spaces and parentheses
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(text.substr(close + 1));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

std::string start_ticks(int pid) {
  auto fields = proc_stat(pid);
  return fields.size() > 19 ? fields[19] : "";
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

json SessionOwner::to_json() const {
  json j = {{"id", id}, {"host", host}, {"pid", pid}, {"started", started}};
  if (!process_start.empty()) j["process_start"] = process_start;
  return j;
}

SessionOwner SessionOwner::from_json(const json& j) {
  SessionOwner o;
  if (!j.is_object()) return o;
  o.id = str(j, "id");
  o.host = str(j, "host");
  o.started = str(j, "started");
  o.process_start = str(j, "process_start");
  if (j.contains("pid") && j["pid"].is_number_integer()) o.pid = j["pid"].get<int>();
  return o;
}

SessionOwner SessionOwner::current(const std::string& id) {
  auto pid = static_cast<int>(::getpid());
  return {id, host_name(), pid, now_rfc3339(), start_ticks(pid)};
}

bool SessionOwner::on_this_host() const { return host == host_name(); }

bool SessionOwner::alive_here() const {
  if (!on_this_host() || pid <= 0) return false;
  auto fields = proc_stat(pid);
  // Gone, a zombie nobody reaped yet, or another process that got the pid since.
  if (fields.empty() || fields[0] == "Z" || fields[0] == "X") return false;
  if (!process_start.empty() && fields.size() > 19 && fields[19] != process_start) return false;
  return true;
}

json SessionRecord::to_json() const {
  return {{"owner", owner.to_json()},
          {"workload", {{"kind", to_string(workload.kind)}, {"namespace", workload.ns},
                        {"name", workload.name}}},
          {"kubeconfig", kubeconfig},
          {"context", context}};
}

SessionRecord SessionRecord::from_json(const json& j) {
  SessionRecord r;
  r.owner = SessionOwner::from_json(j.value("owner", json::object()));
  auto w = j.value("workload", json::object());
  auto kind = kube::workload_kind(str(w, "kind"));
  if (!kind) throw std::runtime_error("unknown workload kind '" + str(w, "kind") + "'");
  r.workload = {*kind, str(w, "namespace"), str(w, "name")};
  r.kubeconfig = str(j, "kubeconfig");
  r.context = str(j, "context");
  return r;
}

std::filesystem::path SessionRecord::path() const {
  return state_dir() / "sessions" / (owner.id + ".json");
}

void SessionRecord::save() const {
  make_private_dir(path().parent_path()).value();  // throws with the Problem's sentence
  write_private_file(path(), to_json().dump(2) + "\n").value();
}

void SessionRecord::erase() const {
  std::error_code ec;
  std::filesystem::remove(path(), ec);
}

std::vector<SessionRecord> SessionRecord::load_all() {
  std::vector<SessionRecord> records;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir() / "sessions", ec)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    auto j = json::parse(in, nullptr, false);
    if (j.is_discarded()) continue;
    try {
      records.push_back(from_json(j));
    } catch (const std::exception&) {
      // A record we cannot read names nothing we could restore; leave it for a person.
    }
  }
  return records;
}

}  // namespace lpk::proxy
