#pragma once
// The machine's resolver pointed at a session's own stub DNS for as long as the session runs
// (`connect --resolver`): installed once the stub listens, removed when the session ends (its
// destructor: normal end, Ctrl-C, SIGTERM), and by `lpk-proxy restore` after a crash.
//
// A record of what was installed, <state>/resolver.json (mode 0600: owner, mode, files), is
// written before the machine changes, so that a crash at any point leaves enough to undo it; a
// live session's record also refuses a second session's install (one resolv.conf, one owner).

#include <memory>
#include <ostream>

#include "dns/system_resolver.hpp"
#include "proxy/takeover/session_record.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::proxy {

class SessionResolver {
 public:
  /// Points the machine's resolver at `config.address:port` (its mode: `config.mode`, auto
  /// picks). A Problem (one sentence saying what to do) when another live session holds it, or
  /// the install fails (then nothing stays changed).
  static tunnel::Result<std::unique_ptr<SessionResolver>> install(dns::ResolverConfig config,
                                                                  const SessionOwner& owner);
  /// Puts the machine's resolver back; says so on stdout, or why not on stderr.
  ~SessionResolver();
  SessionResolver(const SessionResolver&) = delete;
  SessionResolver& operator=(const SessionResolver&) = delete;

  const dns::ResolverConfig& config() const { return config_; }

  /// The id of the live session that has the machine's resolver; empty when none has: checked
  /// before `connect --resolver` changes the cluster.
  static std::string held_by();

  /// `restore`: undoes the install of a session whose process is gone (nothing when there is
  /// no record, or its session runs). Returns false when the undo failed (said on `err`).
  static bool repair_dead(std::ostream& out, std::ostream& err);

 private:
  explicit SessionResolver(dns::ResolverConfig config) : config_(std::move(config)) {}
  dns::ResolverConfig config_;
};

}  // namespace lpk::proxy
