#include "proxy/tunnel/flags.hpp"

#include <algorithm>
#include <stdexcept>

namespace lpk::tunnel {

void for_each_flag(std::span<const std::string> args, const FlagHandler& handle,
                   std::vector<std::string>* command, std::initializer_list<const char*> switches) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& flag = args[i];
    if (command && flag == "--") {
      command->assign(args.begin() + i + 1, args.end());
      if (command->empty()) throw std::invalid_argument("`--` must be followed by a command");
      return;
    }
    if (std::any_of(switches.begin(), switches.end(), [&](const char* s) { return flag == s; })) {
      handle(flag, std::string());
      continue;
    }
    if (i + 1 >= args.size()) {
      throw std::invalid_argument("unknown flag or missing value: " + flag);
    }
    handle(flag, args[++i]);
  }
}

}  // namespace lpk::tunnel
