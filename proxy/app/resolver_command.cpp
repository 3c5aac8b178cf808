#include "proxy/app/resolver_command.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "dns/system_resolver.hpp"
#include "proxy/control/client.hpp"
#include "proxy/control/session_paths.hpp"

namespace lpk::proxy {

namespace {

bool has_flag(const std::vector<std::string>& args, const std::string& flag) {
  return std::find(args.begin(), args.end(), flag) != args.end();
}

/// The session whose stub `install` names: $LPK_SESSION (a session's child), else the only one
/// running. Empty after saying why on stderr.
std::string the_session() {
  if (const char* own = std::getenv("LPK_SESSION"); own && *own) return own;
  auto sessions = live_sessions(runtime_dir());
  if (sessions.size() == 1) return sessions.front();
  if (sessions.empty()) {
    std::cerr << "lpk-proxy: resolver install: no lpk session is running, so nothing would answer "
                 "there; start `lpk-proxy connect` (`connect --resolver` installs and removes "
                 "this by itself), or give --address\n";
  } else {
    std::string ids;
    for (const auto& s : sessions) ids += (ids.empty() ? "" : ", ") + s;
    std::cerr << "lpk-proxy: resolver install: " << sessions.size() << " lpk sessions are "
              << "running (" << ids << "); give --address with the one's `dns` address "
              << "(`lpk-proxy status --session ID`)\n";
  }
  return {};
}

}  // namespace

int run_resolver(std::vector<std::string> args) {
  if (!args.empty() && args[0] == "install" && !has_flag(args, "--address")) {
    auto session = the_session();
    if (session.empty()) return 1;
    auto reply = control_request(control_socket_path(session), "status");
    if (!reply) {
      std::cerr << "lpk-proxy: resolver install: session " << session << ": "
                << reply.error().message << "\n";
      return 1;
    }
    const auto& result = reply->contains("result") ? (*reply)["result"] : *reply;
    args.push_back("--address");
    args.push_back(result["dns"].value("address", ""));
    if (!has_flag(args, "--namespace")) {
      args.push_back("--namespace");
      args.push_back(result.value("namespace", "default"));
    }
  }
  return dns::run_resolver_command(args, std::cout, std::cerr);
}

}  // namespace lpk::proxy
