#pragma once
// The environment a local process gets from `lpk-proxy connect`: the container's environment as
// the agent reported it, with the service link variables of the services lpk maps pointing at
// lpk's loopback listeners, the container's mounted files written under the session directory,
// and the developer's own session variables (PATH, HOME, TERM...) kept.
//
// All functions are plain and synchronous; the files are small (the agent's limit). They are
// written at start-up and again whenever the agent reports a change (file_sync.hpp).

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "kube/envvars.hpp"
#include "proxy/tunnel/agent_services.hpp"
#include "proxy/tunnel/error.hpp"

namespace lpk::proxy {

/// Tells the local process where the container's mounted files are: the container's
/// /etc/config/app.yaml is $LPK_FILES_ROOT/etc/config/app.yaml. Value: <session dir>/files.
inline constexpr const char* kFilesRootVariable = "LPK_FILES_ROOT";
/// The id of the lpk session the process runs in (`lpk-proxy status` uses it as --session).
inline constexpr const char* kSessionVariable = "LPK_SESSION";

using EnvMap = std::map<std::string, std::string>;

/// One port of a service as the Service spec lists it.
using LinkPort = kube::ServicePort;

/// A service lpk maps: its listeners are `address` on the service's own port numbers.
struct LinkedService {
  std::string name;  ///< the Service's name ("redis-main")
  boost::asio::ip::address address;
  std::vector<LinkPort> ports;  ///< in the Service spec's order: the first one is special
};

/// kube::env_variable_name (makeEnvVariableName in k/k pkg/kubelet/envvars).
std::string link_variable_name(std::string_view name);

/// The service link variables the kubelet would set for `service`, with lpk's address as its
/// cluster IP (kube::service_link_variables).
std::vector<std::pair<std::string, std::string>> service_link_variables(
    const LinkedService& service);

/// What rewrite_service_links did.
struct LinkRewrite {
  std::vector<std::string> rewritten;  ///< variables now pointing at lpk, sorted
  /// Service link variables of services lpk does not map, left alone, sorted. A service is
  /// recognised by its {SVC}_SERVICE_HOST holding an IP address; its variables are the kubelet
  /// forms built from that prefix.
  std::vector<std::string> unmapped;
  std::vector<std::string> unmapped_services;  ///< their {SVC} prefixes, sorted
};

/// Points the service link variables of `services` at lpk: every variable of
/// service_link_variables() that `env` already has gets lpk's value. Names are matched
/// exactly, so a look-alike (MY_APP_PORT when no service is named my-app, API_SERVICE_PORT_X
/// when api has no port named x) is never touched, and no variable is added: the container's
/// set stays a snapshot, as the kubelet's is. When two mapped services claim one name (service
/// `a` port and service `a-service`), the later one in `services` wins.
LinkRewrite rewrite_service_links(EnvMap& env, const std::vector<LinkedService>& services);

/// Writes one file of the container (`container_path` absolute, as mounted) to
/// root/<container_path>, creating directories 0700.
///
/// Mode policy: the owner bits of `mode` are kept and group/other bits are dropped, for
/// every file. The agent's report does not say which mount is a Secret, the files root is
/// private (0700) anyway, and the local user is the only reader: a 0644 configMap file
/// becomes 0600, a 0755 script 0700, a 0400 secret stays 0400. Owner read is always added so
/// the process can read what it was given.
///
/// Refused (a Problem, nothing written): a relative path, a path with a `..` component, an
/// empty or directory-like path. The last component is never followed if it is a symlink. The
/// file is written beside its place and renamed there, so it changes in one step.
tunnel::Result<void> write_imported_file(const std::filesystem::path& root,
                                         const std::string& container_path, std::uint32_t mode,
                                         std::string_view bytes);

/// Removes root/<container_path> (nothing when it is not there); the same paths are refused as
/// by write_imported_file.
tunnel::Result<void> remove_imported_file(const std::filesystem::path& root,
                                          const std::string& container_path);

/// The variables lpk adds for the child: LPK_FILES_ROOT, LPK_SESSION.
EnvMap lpk_variables(const std::string& session, const std::filesystem::path& files_root);

/// True for the variables the child takes from the developer's environment only, never from the
/// imported one (see build_child_environment).
bool developer_keeps(std::string_view name);

/// The child's environment. The rule: start from the developer's own environment, lay the
/// imported one over it, then lay `lpk` over both. The imported value wins for everything
/// that describes the application (its config, secrets, service links, HOSTNAME, TZ), but not
/// for the variables that make the developer's machine work: where programs and libraries are
/// (PATH, LD_*, the toolchain homes), who and where the user is (HOME, USER, LOGNAME, SHELL,
/// PWD, TMPDIR, XDG_*), the terminal, display, desktop bus and agents (TERM, COLORTERM,
/// DISPLAY, WAYLAND_DISPLAY, XAUTHORITY, DBUS_SESSION_BUS_ADDRESS, SSH_AUTH_SOCK) and the
/// locale (LANG, LANGUAGE, LC_*). The container's values of those name paths inside its image
/// or its own terminal; taking them would break the debugger, the shell and the tools the
/// process starts, so the child gets them from the developer's environment only (an imported
/// LD_PRELOAD or DISPLAY is dropped even when the developer has none). A developer variable
/// absent from the container is kept.
EnvMap build_child_environment(const EnvMap& developer, const EnvMap& imported, const EnvMap& lpk);

/// This process's environment (environ) as a map.
EnvMap current_environment();

/// "KEY=value" strings for execve, in key order.
std::vector<std::string> to_envp(const EnvMap& env);

/// True when `name` can be written to a dotenv file: [A-Za-z_][A-Za-z0-9_]*.
bool is_portable_variable_name(std::string_view name);

/// One dotenv line for KEY and value, without the newline: KEY="value", with backslash,
/// double quote and $ escaped by a backslash and a newline written as \n: the double quoted
/// form of docker compose and godotenv, which read every value back as it was (their `$`
/// interpolation is what \$ prevents). python-dotenv reads it back too, except that it keeps
/// the backslash of \$ and cannot parse a value that ends in a backslash; Node's dotenv turns
/// only \n back. It is not a shell script: a
/// backtick or a carriage return is written as it is.
std::string dotenv_line(std::string_view key, std::string_view value);

/// Writes `env` as a dotenv file at `path`, mode 0600 (created so, or an existing file
/// truncated and chmodded). Variables whose names are not portable are left out and listed in
/// `left_out`. A Problem names the path.
tunnel::Result<void> write_env_file(const std::filesystem::path& path, const EnvMap& env,
                                    std::vector<std::string>& left_out);

}  // namespace lpk::proxy
