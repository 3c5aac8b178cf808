#include "proxy/control.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proxy/session_paths.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::local::stream_protocol;
using nlohmann::json;

namespace {

constexpr auto kNoError = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxRequest = 64 * 1024;
constexpr std::chrono::seconds kRequestTimeout{5};

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

bool is_socket_file(const fs::path& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

// ---- server ----

struct ControlServer::Shared {
  Shared(asio::any_io_executor ex, std::string id, fs::path p)
      : executor(ex), session(std::move(id)), path(std::move(p)), acceptor(ex) {}

  asio::any_io_executor executor;
  std::string session;
  fs::path path;
  std::map<std::string, Handler> handlers;
  stream_protocol::acceptor acceptor;
  bool listening = false;
  bool stopped = false;
};

namespace {

json answer(ControlServer::Handler* handler, const std::string& command, const std::string& session,
            const std::map<std::string, ControlServer::Handler>& all) {
  if (!handler) {
    std::string known;
    for (const auto& [name, h] : all) known += (known.empty() ? "" : ", ") + name;
    return {{"ok", false}, {"error", "unknown command \"" + command + "\" (known: " + known + ")"}};
  }
  try {
    return {{"ok", true}, {"command", command}, {"session", session}, {"result", (*handler)()}};
  } catch (const std::exception& e) {
    return {{"ok", false}, {"command", command}, {"error", e.what()}};
  }
}

json reply_to(const std::string& line, ControlServer::Shared& shared);

asio::awaitable<void> serve(std::shared_ptr<ControlServer::Shared> shared,
                            stream_protocol::socket socket) {
  using namespace asio::experimental::awaitable_operators;
  std::string line;
  asio::steady_timer deadline(socket.get_executor(), kRequestTimeout);
  auto read =
      asio::async_read_until(socket, asio::dynamic_buffer(line, kMaxRequest), '\n', kNoError);
  auto result = co_await (std::move(read) || deadline.async_wait(kNoError));
  if (result.index() == 1) co_return;  // a client that never finished its line
  auto [ec, n] = std::get<0>(result);
  if (ec && line.empty()) co_return;  // a probe: connected and closed
  std::string reply = reply_to(line.substr(0, line.find('\n')), *shared).dump() + "\n";
  co_await asio::async_write(socket, asio::buffer(reply), kNoError);
}

json reply_to(const std::string& line, ControlServer::Shared& shared) {
  json request = json::parse(line, nullptr, false);
  if (request.is_discarded() || !request.is_object() || !request.contains("command") ||
      !request["command"].is_string()) {
    return {{"ok", false}, {"error", "a request is one JSON line like {\"command\":\"status\"}"}};
  }
  auto command = request["command"].get<std::string>();
  auto it = shared.handlers.find(command);
  return answer(it == shared.handlers.end() ? nullptr : &it->second, command, shared.session,
                shared.handlers);
}

asio::awaitable<void> accept_loop(std::shared_ptr<ControlServer::Shared> shared) {
  while (!shared->stopped) {
    auto [ec, socket] = co_await shared->acceptor.async_accept(kNoError);
    if (shared->stopped || ec == asio::error::operation_aborted) break;
    if (ec) {  // out of descriptors, say: let the others finish before trying again
      asio::steady_timer pause(shared->executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoError);
      continue;
    }
    asio::co_spawn(shared->executor, serve(shared, std::move(socket)), asio::detached);
  }
}

}  // namespace

ControlServer::ControlServer(asio::any_io_executor executor, std::string session,
                             fs::path socket_path)
    : shared_(std::make_shared<Shared>(executor, std::move(session), std::move(socket_path))) {}

ControlServer::~ControlServer() { stop(); }

const fs::path& ControlServer::socket_path() const { return shared_->path; }

void ControlServer::handle(const std::string& command, Handler handler) {
  shared_->handlers[command] = std::move(handler);
}

std::error_code ControlServer::start(std::string& problem) {
  const fs::path& path = shared_->path;
  if (auto ec = make_private_dir(path.parent_path(), problem)) return ec;
  if (path.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
    problem = "the control socket path " + path.string() +
              " is longer than a unix socket allows; "
              "set XDG_RUNTIME_DIR to a shorter directory";
    return std::make_error_code(std::errc::filename_too_long);
  }
  std::error_code exists;
  if (fs::symlink_status(path, exists).type() != fs::file_type::not_found) {
    if (!is_socket_file(path)) {
      problem = path.string() + " exists and is not a socket; remove it";
      return std::make_error_code(std::errc::file_exists);
    }
    if (probe_control_socket(path)) {
      problem = "a running lpk session already answers at " + path.string();
      return std::make_error_code(std::errc::address_in_use);
    }
  }
  boost::system::error_code ec;
  auto& acceptor = shared_->acceptor;
  acceptor.open(stream_protocol(), ec);
  if (!ec) acceptor.bind(stream_protocol::endpoint(path.string()), ec);
  // The directory is 0700 already; 0600 keeps the socket private wherever it is moved or linked.
  if (!ec && chmod(path.c_str(), 0600) != 0) ec.assign(errno, boost::system::system_category());
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    problem = "cannot listen on " + path.string() + ": " + ec.message();
    acceptor.close(ec);
    return std::make_error_code(std::errc::io_error);
  }
  shared_->listening = true;
  asio::co_spawn(shared_->executor, accept_loop(shared_), asio::detached);
  return {};
}

void ControlServer::stop() {
  if (shared_->stopped) return;
  shared_->stopped = true;
  boost::system::error_code ignored;
  shared_->acceptor.close(ignored);
  if (shared_->listening) unlink(shared_->path.c_str());
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

std::optional<json> control_request(const fs::path& socket_path, const std::string& command,
                                    std::string& error, std::chrono::milliseconds timeout) {
  Fd fd{connect_unix(socket_path, timeout)};
  if (fd.fd < 0) {
    error = "cannot connect to " + socket_path.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string request = json{{"command", command}}.dump() + "\n";
  if (send(fd.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    error = "cannot send the request: " + std::string(std::strerror(errno));
    return std::nullopt;
  }
  std::string reply;
  char buffer[16384];
  while (reply.find('\n') == std::string::npos) {
    ssize_t n = recv(fd.fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = errno == EAGAIN ? "the session did not answer in time"
                              : "cannot read the reply: " + std::string(std::strerror(errno));
      return std::nullopt;
    }
    if (n == 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  json parsed = json::parse(reply.substr(0, reply.find('\n')), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    error = "the session's reply is not a JSON object";
    return std::nullopt;
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
    rows.push_back(
        {field(t, "pod"), field(t, "state"), rtt_text(t),
         "streams " + field(t, "streams") + " open, " + field(t, "streams_total") + " total"});
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
    "usage: lpk-proxy status|env|diagnostics [--session ID] [--json]";

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
    if (a == "--json") {
      parsed.as_json = true;
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
  std::string error;
  auto reply = control_request(control_socket_path(id), "status", error, std::chrono::seconds(2));
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
  std::string error;
  auto reply = control_request(control_socket_path(id), parsed.command, error);
  if (!reply) {
    err << "lpk-proxy: session " << id << ": " << error << "\n";
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
