#pragma once
// Standard base64 (RFC 4648 §4, with padding) as Go's encoding/base64.StdEncoding: the kubeconfig
// *-data fields and basic auth use it.
#include <optional>
#include <string>
#include <string_view>

namespace lpk::kube::detail {

std::string base64_encode(std::string_view in);
/// nullopt on a character outside the alphabet or bad padding; '\r' and '\n' are skipped as Go does.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace lpk::kube::detail
