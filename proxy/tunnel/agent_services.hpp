#pragma once
// Agent services (docs/protocol.md §7): streams to reserved names under `lpk.internal` that the
// agent answers itself instead of dialling. This is the one definition both ends use: the names
// and ports, and the env service's document (the agent encodes it, the proxy parses it).
//
//   env.lpk.internal:1   one JSON document: the container's environment, the files under its
//                        volume mounts, the pod and the container; then the stream closes
//   dns.lpk.internal:53  DNS over TCP framing, answered by the pod's own nameserver
//   files.lpk.internal:1 the files under the volume mounts, then every change to them, as
//                        long as the stream stays open (one JSON line per FilesUpdate)
//
// Pure: no I/O. The parser is fed bytes from the network and never throws.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/tunnel/error.hpp"

namespace lpk::tunnel {

inline constexpr std::string_view kServiceDomain = "lpk.internal";
inline constexpr std::string_view kEnvServiceHost = "env.lpk.internal";
inline constexpr std::uint16_t kEnvServicePort = 1;
inline constexpr std::string_view kDnsServiceHost = "dns.lpk.internal";
inline constexpr std::uint16_t kDnsServicePort = 53;
inline constexpr std::string_view kFilesServiceHost = "files.lpk.internal";
inline constexpr std::uint16_t kFilesServicePort = 1;

/// One regular file found under a reported volume mount, as the container sees it.
struct AgentFile {
  std::string path;        ///< absolute, as visible in the container ("/etc/config/app.yaml")
  std::uint32_t mode = 0;  ///< permission bits (0644 = 420)
  std::string bytes;       ///< the content (base64 in the document)
};

/// A file the agent did not send, and why ("larger than 1048576 bytes", "not a regular file").
struct SkippedFile {
  std::string path;
  std::string reason;
};

/// The env service's document: what the agent reports about the container it replaced.
struct AgentEnvironment {
  std::map<std::string, std::string> env;  ///< the container's environment as the kubelet set it
  std::vector<AgentFile> files;
  std::vector<SkippedFile> skipped;
  std::string pod_name;       ///< may be empty when the agent could not tell
  std::string pod_namespace;  ///< may be empty when the agent could not tell
  std::string container;      ///< may be empty when the agent was not told (--container)
};

/// The document as JSON: {"env":{..},"files":[{"path","mode","data"(base64)}],
/// "skipped":[{"path","reason"}],"pod":{"name","namespace"},"container":".."}. Bytes that are not
/// UTF-8 in names, values and paths become U+FFFD (file contents are base64, so they are exact).
std::string encode_environment(const AgentEnvironment& environment);

/// Parses a document. Anything that is not the documented shape (not JSON, a field of the wrong
/// type, bad base64, a mode beyond 07777) is a Problem (Error::bad_document) naming the field.
Result<AgentEnvironment> parse_environment(std::string_view document);

/// One message of the files service. The first one is `full`: every file the agent sees, and
/// the receiver removes whatever else it had. The ones after carry the files that appeared or
/// changed since the message before, the paths that disappeared, and the files newly skipped.
/// Kubelets rewrite configMap, secret and projected volumes when their objects change and
/// before a projected token expires; this is how those changes reach the developer's copy.
struct FilesUpdate {
  bool full = false;
  std::vector<AgentFile> files;
  std::vector<std::string> removed;
  std::vector<SkippedFile> skipped;
};

/// The message as one line of JSON, '\n' included: {"full":b,"files":[..],"removed":[..],
/// "skipped":[..]} (files as in encode_environment).
std::string encode_files_update(const FilesUpdate& update);

/// Parses one line (without its '\n'). Anything else than that shape is a Problem
/// (Error::bad_document) naming the field.
Result<FilesUpdate> parse_files_update(std::string_view line);

/// True for a name inside `lpk.internal` (any case, trailing dot allowed): never dialled.
bool is_service_name(std::string_view host);

}  // namespace lpk::tunnel
