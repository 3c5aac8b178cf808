#include "proxy/control/client.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proxy/control/session_paths.hpp"

namespace lpk::proxy {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Connects a blocking unix socket with send/receive timeouts; -1 with errno on failure.
int connect_unix(const fs::path& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

}  // namespace

bool is_socket_file(const fs::path& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// ---- client ----

bool probe_control_socket(const fs::path& socket_path) {
  Fd fd{connect_unix(socket_path, std::chrono::seconds(2))};
  if (fd.fd >= 0) return true;
  // Refused: a socket file whose session died without removing it.
  if (errno == ECONNREFUSED && is_socket_file(socket_path)) unlink(socket_path.c_str());
  return false;
}

std::vector<std::string> live_sessions(const fs::path& runtime_dir) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(runtime_dir, ec)) {
    const auto& path = entry.path();
    if (path.extension() != ".sock") continue;
    if (probe_control_socket(path)) ids.push_back(path.stem().string());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

tunnel::Result<json> control_request(const fs::path& socket_path, const std::string& command,
                                     std::chrono::milliseconds timeout) {
  using tunnel::Problem;
  auto failed = [](std::string what) {
    auto ec = std::error_code(errno, std::generic_category());
    return Problem{ec, what + ": " + ec.message()};
  };
  Fd fd{connect_unix(socket_path, timeout)};
  if (fd.fd < 0) return failed("cannot connect to " + socket_path.string());
  std::string request = json{{"command", command}}.dump() + "\n";
  if (send(fd.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return failed("cannot send the request");
  }
  std::string reply;
  char buffer[16384];
  while (reply.find('\n') == std::string::npos) {
    ssize_t n = recv(fd.fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      return Problem{std::make_error_code(std::errc::timed_out),
                     "the session did not answer in time"};
    }
    if (n < 0) return failed("cannot read the reply");
    if (n == 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  json parsed = json::parse(reply.substr(0, reply.find('\n')), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Problem{std::make_error_code(std::errc::bad_message),
                   "the session's reply is not a JSON object"};
  }
  return parsed;
}

// ---- printing ----

namespace {

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string field(const json& object, const char* name) {
  return object.is_object() && object.contains(name) ? text_of(object[name]) : "";
}

std::string join_ports(const json& ports) {
  std::string out;
  if (!ports.is_array()) return text_of(ports);
  for (const auto& p : ports) out += (out.empty() ? "" : ",") + text_of(p);
  return out;
}

void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = " ";
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += (i == 0 ? " " : "  ") + row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size(), ' ');
    }
    out << line << "\n";
  }
}

std::string rtt_text(const json& tunnel) {
  if (!tunnel.contains("rtt_ms") || !tunnel["rtt_ms"].is_number()) return "rtt -";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "rtt %.2f ms", tunnel["rtt_ms"].get<double>());
  return buffer;
}

}  // namespace

void print_status(const json& result, std::ostream& out) {
  std::string service = field(result, "service"), ns = field(result, "namespace");
  out << "service " << (service.empty() ? "-" : service);
  if (!ns.empty()) out << " in namespace " << ns;
  if (auto pid = field(result, "pid"); !pid.empty()) out << ", lpk-proxy pid " << pid;
  out << "\n";
  if (result.contains("child") && result["child"].is_object()) {
    out << "child pid " << field(result["child"], "pid") << ": "
        << field(result["child"], "command") << "\n";
  }
  for (const auto& r : result.value("replaced", json::array())) {
    if (!r.contains("route") || !r["route"].is_object()) continue;
    const auto& route = r["route"];
    auto requests = field(route, "requests");
    out << "route: service " << field(r, "service") << " requests with " << field(route, "header")
        << ": " << field(route, "value") << " -> this machine ("
        << (requests.empty() ? "requests not known yet" : requests + " so far") << ", router "
        << field(route, "router") << ")\n";
  }
  const json dns = result.value("dns", json());
  out << "DNS " << (dns.is_object() ? field(dns, "address") : std::string("off")) << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : result.value("services", json::array())) {
    std::string name = field(s, "name");
    if (auto n = field(s, "namespace"); !n.empty()) name += "." + n;
    rows.push_back({name, field(s, "address"), join_ports(s.value("ports", json::array()))});
  }
  out << "services (" << rows.size() << "):\n";
  print_table(rows, out);
  rows.clear();
  for (const auto& t : result.value("tunnels", json::array())) {
    std::vector<std::string> row = {
        field(t, "pod"), field(t, "state"), rtt_text(t),
        "streams " + field(t, "streams") + " open, " + field(t, "streams_total") + " total"};
    if (auto drops = field(t, "drops"); !drops.empty() && drops != "0") {
      row.push_back("link dropped " + drops + "x, last: " + field(t, "last_drop"));
      if (auto resumes = field(t, "resumes"); !resumes.empty() && resumes != "0") {
        row.push_back("resumed " + resumes + "x: " + field(t, "resumed_streams") +
                      " streams carried on, " + field(t, "retransmitted_bytes") +
                      " bytes sent again, " + field(t, "lost_streams") + " streams lost");
      }
    }
    rows.push_back(std::move(row));
  }
  out << "tunnels (" << rows.size() << "):\n";
  print_table(rows, out);
}

void print_env(const json& result, std::ostream& out) {
  const json& env = result.is_object() && result.contains("env") ? result["env"] : result;
  if (!env.is_object()) return;
  for (const auto& [name, value] : env.items()) out << name << "=" << text_of(value) << "\n";
}

// ---- lpk-proxy status|env|diagnostics ----

namespace {

constexpr const char* kControlUsage =
    "usage: lpk-proxy status|env|diagnostics [--session ID] [--json | --output json]";

struct ControlArgs {
  std::string command;
  std::string session;
  bool as_json = false;
};

// Returns an error sentence, or empty when `args` parse.
std::string parse_control_args(const std::vector<std::string>& args, ControlArgs& parsed) {
  if (args.empty()) return "which command? status, env or diagnostics";
  parsed.command = args[0];
  if (parsed.command != "status" && parsed.command != "env" && parsed.command != "diagnostics") {
    return "unknown command '" + parsed.command + "'; use status, env or diagnostics";
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json" || a == "--output=json") {
      parsed.as_json = true;
    } else if (a == "--output=text") {
      parsed.as_json = false;
    } else if (a == "--output" && i + 1 < args.size() &&
               (args[i + 1] == "json" || args[i + 1] == "text")) {
      parsed.as_json = args[++i] == "json";
    } else if (a == "--output" || a.rfind("--output=", 0) == 0) {
      return "--output wants json or text";
    } else if (a == "--session" && i + 1 < args.size()) {
      parsed.session = args[++i];
    } else if (a.rfind("--session=", 0) == 0) {
      parsed.session = a.substr(10);
    } else if (a == "--session") {
      return "--session needs a session id (lpk-proxy " + parsed.command + " lists them)";
    } else {
      return "unknown option '" + a + "'";
    }
  }
  if (parsed.session.find('/') != std::string::npos) return "a session id has no '/'";
  return {};
}

std::string describe(const std::string& id) {
  auto reply = control_request(control_socket_path(id), "status", std::chrono::seconds(2));
  if (!reply || !reply->value("ok", false)) return id;
  const json result = reply->value("result", json::object());
  std::string service = field(result, "service"), ns = field(result, "namespace");
  if (service.empty()) return id;
  return id + " (" + service + (ns.empty() ? "" : " in " + ns) + ")";
}

// The session to ask, or empty after telling `err` why there is none.
std::string pick_session(const ControlArgs& args, std::ostream& err) {
  if (!args.session.empty()) {
    if (probe_control_socket(control_socket_path(args.session))) return args.session;
    err << "lpk-proxy: no lpk session " << args.session
        << " is running (lpk-proxy status without --session lists the running ones)\n";
    return {};
  }
  // Inside the child of a session, that session is meant.
  const char* own = std::getenv("LPK_SESSION");
  if (own && *own && std::strchr(own, '/') == nullptr &&
      probe_control_socket(control_socket_path(own))) {
    return own;
  }
  auto ids = live_sessions(runtime_dir());
  if (ids.size() == 1) return ids.front();
  if (ids.empty()) {
    err << "lpk-proxy: no lpk session is running; start one with "
           "lpk-proxy connect --service NAME [-- COMMAND]\n";
    return {};
  }
  err << "lpk-proxy: " << ids.size()
      << " lpk sessions are running; choose one with --session ID:\n";
  for (const auto& id : ids) err << "  " << describe(id) << "\n";
  return {};
}

}  // namespace

int run_control_command(const std::vector<std::string>& args, std::ostream& out,
                        std::ostream& err) {
  if (!args.empty() && args.size() >= 2 && (args[1] == "--help" || args[1] == "-h")) {
    out << kControlUsage << "\n";
    return 0;
  }
  ControlArgs parsed;
  if (auto problem = parse_control_args(args, parsed); !problem.empty()) {
    err << "lpk-proxy: " << problem << " (" << kControlUsage << ")\n";
    return 2;
  }
  std::string id = pick_session(parsed, err);
  if (id.empty()) return 1;
  auto reply = control_request(control_socket_path(id), parsed.command);
  if (!reply) {
    err << "lpk-proxy: session " << id << ": " << reply.error().message << "\n";
    return 1;
  }
  if (!reply->value("ok", false)) {
    err << "lpk-proxy: session " << id << ": " << field(*reply, "error") << "\n";
    return 1;
  }
  const json result = reply->value("result", json());
  if (parsed.as_json) {
    out << result.dump() << "\n";
  } else if (parsed.command == "status") {
    out << "session " << id << "\n";
    print_status(result, out);
  } else if (parsed.command == "env") {
    print_env(result, out);
  } else {
    out << result.dump(2) << "\n";
  }
  return 0;
}

}  // namespace lpk::proxy
