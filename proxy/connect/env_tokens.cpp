#include "proxy/connect/env_tokens.hpp"

#include <algorithm>

namespace lpk::proxy {

namespace {

tunnel::Problem token_problem(std::string_view token, const std::string& why) {
  return tunnel::Problem{std::make_error_code(std::errc::invalid_argument),
                         "${" + std::string(token) + "}: " + why};
}

bool is_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

/// A service reference NAME[.NS][.address][:PORT], split.
struct ServiceRef {
  std::string name;
  std::string ns;
  std::string port;  ///< digits, or empty
};

tunnel::Result<ServiceRef> parse_service_ref(std::string_view token, std::string_view ref) {
  ServiceRef out;
  if (auto colon = ref.find(':'); colon != std::string_view::npos) {
    out.port = std::string(ref.substr(colon + 1));
    ref = ref.substr(0, colon);
    bool digits = !out.port.empty() && out.port.size() <= 5 &&
                  out.port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoul(out.port) == 0 || std::stoul(out.port) > 65535) {
      return token_problem(token, "the port must be a number from 1 to 65535");
    }
  }
  constexpr std::string_view kAddress = ".address";
  if (ref.size() > kAddress.size() && ref.ends_with(kAddress)) {
    ref.remove_suffix(kAddress.size());
  }
  auto dot = ref.find('.');
  out.name = std::string(ref.substr(0, dot));
  if (dot != std::string_view::npos) out.ns = std::string(ref.substr(dot + 1));
  if (!is_name(out.name) || (dot != std::string_view::npos && !is_name(out.ns))) {
    return token_problem(token, "wants ${service:NAME[.NAMESPACE][:PORT]} with lowercase "
                                "Kubernetes names");
  }
  return out;
}

/// The text of one token (what is between "${" and "}").
tunnel::Result<std::string> expand_token(std::string_view token, const EnvTokenLookup* lookup) {
  auto colon = token.find(':');
  auto kind = token.substr(0, colon);
  auto arg = colon == std::string_view::npos ? std::string_view() : token.substr(colon + 1);
  if (kind == "service") {
    auto ref = parse_service_ref(token, arg);
    if (!ref) return ref.error();
    if (!lookup) return std::string("127.0.0.1");
    auto address = lookup->service_address(ref->name, ref->ns);
    if (!address) {
      return token_problem(token, "lpk maps no such service (a service of another namespace "
                                  "needs --also-namespace / alsoNamespaces)");
    }
    return ref->port.empty() ? *address : *address + ":" + ref->port;
  }
  if (kind == "files") {
    if (!arg.starts_with("/") || arg.find("..") != std::string_view::npos) {
      return token_problem(token, "wants ${files:/ABSOLUTE/PATH} as the container sees it");
    }
    if (!lookup) return std::string(arg);
    return (lookup->files_root / arg.substr(1)).string();
  }
  return token_problem(token, "unknown token; lpk knows ${service:...} and ${files:...} (write "
                              "$${ for a literal ${)");
}

tunnel::Result<std::string> expand(std::string_view value, const EnvTokenLookup* lookup) {
  std::string out;
  for (std::size_t i = 0; i < value.size();) {
    if (value.substr(i).starts_with("$${")) {
      out += "${";
      i += 3;
      continue;
    }
    if (!value.substr(i).starts_with("${")) {
      out.push_back(value[i++]);
      continue;
    }
    auto end = value.find('}', i + 2);
    if (end == std::string_view::npos) {
      return token_problem(value.substr(i + 2), "has no closing }");
    }
    auto text = expand_token(value.substr(i + 2, end - i - 2), lookup);
    if (!text) return text.error();
    out += *text;
    i = end + 1;
  }
  return out;
}

}  // namespace

tunnel::Result<std::string> expand_env_tokens(std::string_view value,
                                              const EnvTokenLookup& lookup) {
  return expand(value, &lookup);
}

std::vector<std::string> lay_env_overrides(
    const std::vector<std::pair<std::string, std::string>>& overrides,
    const EnvTokenLookup& lookup, std::map<std::string, std::string>& into) {
  std::vector<std::string> problems;
  for (const auto& [name, value] : overrides) {
    auto expanded = expand_env_tokens(value, lookup);
    if (expanded) {
      into[name] = *expanded;
    } else {
      problems.push_back("env " + name + ": " + expanded.error().message + "; " + name +
                         " is not set");
    }
  }
  return problems;
}

tunnel::Result<void> check_env_tokens(std::string_view value) {
  auto checked = expand(value, nullptr);
  if (!checked) return checked.error();
  return {};
}

}  // namespace lpk::proxy
