#include "proxy/connect/session_resolver.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "proxy/control/console.hpp"
#include "proxy/control/session_paths.hpp"

namespace lpk::proxy {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path record_path() { return state_dir() / "resolver.json"; }

json record_of(const dns::ResolverConfig& c, const SessionOwner& owner) {
  return {{"owner", owner.to_json()}, {"mode", c.mode},          {"zone", c.zone},
          {"namespace", c.ns},        {"address", c.address.to_string()},
          {"port", c.port},           {"resolv_conf", c.resolv_conf}, {"backup", c.backup},
          {"link", c.link}};
}

/// The record's config and owner; nullopt when there is none or it is unreadable.
std::optional<std::pair<dns::ResolverConfig, SessionOwner>> read_record() {
  std::ifstream in(record_path());
  if (!in) return std::nullopt;
  auto j = json::parse(in, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  dns::ResolverConfig c;
  boost::system::error_code ec;
  c.address = boost::asio::ip::make_address(j.value("address", ""), ec);
  if (ec) return std::nullopt;
  c.mode = j.value("mode", "auto");
  c.zone = j.value("zone", c.zone);
  c.ns = j.value("namespace", c.ns);
  c.port = j.value("port", std::uint16_t(53));
  c.resolv_conf = j.value("resolv_conf", c.resolv_conf);
  c.backup = j.value("backup", "");
  c.link = j.value("link", c.link);
  return std::pair{c, SessionOwner::from_json(j.value("owner", json::object()))};
}

/// The install's own lines become one: what changed, or why not.
std::string last_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

tunnel::Result<std::unique_ptr<SessionResolver>> SessionResolver::install(
    dns::ResolverConfig config, const SessionOwner& owner) {
  auto problem = [](const std::string& why) {
    return tunnel::Problem{std::make_error_code(std::errc::operation_not_permitted), why};
  };
  if (auto earlier = read_record()) {
    if (earlier->second.alive_here()) {
      return problem("--resolver: lpk session " + earlier->second.id + " (pid " +
                     std::to_string(earlier->second.pid) +
                     ") has the system resolver; end it, or connect without --resolver");
    }
    std::ostringstream out, err;
    if (!repair_dead(out, err)) return problem("--resolver: " + last_line(err.str()));
  }
  config.mode = dns::detect_mode(config);  // recorded as done, whatever the file says later
  if (auto made = make_private_dir(state_dir()); !made) return made.error();
  if (auto saved = write_private_file(record_path(), record_of(config, owner).dump(2) + "\n");
      !saved) {
    return saved.error();
  }
  std::ostringstream out, err;
  if (dns::install_resolver(config, out, err) != 0) {
    std::ostringstream undo_out, undo_err;
    dns::uninstall_resolver(config, undo_out, undo_err);  // a half-done resolved install
    std::error_code ec;
    fs::remove(record_path(), ec);
    return problem("--resolver: " + last_line(err.str()));
  }
  return std::unique_ptr<SessionResolver>(new SessionResolver(std::move(config)));
}

SessionResolver::~SessionResolver() {
  std::ostringstream out, err;
  if (dns::uninstall_resolver(config_, out, err) != 0) {
    std::fprintf(stderr, "lpk-proxy: the system resolver was not put back: %s; run `lpk-proxy "
                 "restore`\n", last_line(err.str()).c_str());
    return;
  }
  std::error_code ec;
  fs::remove(record_path(), ec);
  console::print_line(console::kResolverBack, last_line(out.str()));
}

std::string SessionResolver::held_by() {
  auto record = read_record();
  return record && record->second.alive_here() ? record->second.id : std::string();
}

bool SessionResolver::repair_dead(std::ostream& out, std::ostream& err) {
  auto record = read_record();
  if (!record || record->second.alive_here()) return true;
  std::ostringstream steps;
  if (dns::uninstall_resolver(record->first, steps, err) != 0) return false;
  std::error_code ec;
  fs::remove(record_path(), ec);
  out << "system resolver put back, left pointing at lpk by session " << record->second.id
      << " (" << last_line(steps.str()) << ")\n";
  return true;
}

}  // namespace lpk::proxy
