#pragma once
// `lpk-proxy resolver install|uninstall|status`: the dns library's command, except that
// `install` without --address points at the running session's own stub (and its namespace's
// search domains) rather than at a fixed address no session may serve.

#include <string>
#include <vector>

namespace lpk::proxy {

int run_resolver(std::vector<std::string> args);

}  // namespace lpk::proxy
