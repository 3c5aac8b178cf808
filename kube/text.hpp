#pragma once
// Text helpers with no dependencies: standard base64 (RFC 4648 §4, with padding, as Go's
// encoding/base64.StdEncoding: kubeconfig *-data fields, Secret data, basic auth, the agent
// services' documents) and ASCII case folding (DNS names, protocols, workload kinds).
//
// The bottom of the tree (library lpk::text): every module may use it and it uses nothing of
// lpk. It lives in kube/, its first user (docs/architecture.md).

#include <optional>
#include <string>
#include <string_view>

namespace lpk::text {

std::string base64_encode(std::string_view in);
/// nullopt on a character outside the alphabet or bad padding; '\r' and '\n' are skipped as Go does.
std::optional<std::string> base64_decode(std::string_view in);

/// 'A'-'Z' to 'a'-'z'; every other byte as it is (locale-independent, unlike std::tolower).
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? char(c + ('a' - 'A')) : c; }
std::string ascii_lower(std::string_view s);
constexpr char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? char(c - ('a' - 'A')) : c; }
std::string ascii_upper(std::string_view s);
/// ASCII case-insensitive equality (DNS names compare this way, RFC 4343).
bool iequals(std::string_view a, std::string_view b);

}  // namespace lpk::text
