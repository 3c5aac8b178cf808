#pragma once
// The command lines of both ends: one walk over `FLAG VALUE` pairs, shared by lpk-proxy's
// commands and lpk-agent's subcommands, so that a missing value reads the same everywhere.

#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace lpk::tunnel {

/// What for_each_flag calls for each flag: the flag, then its value ("" for a switch). It
/// throws std::invalid_argument for a flag it does not know or a value it cannot take.
using FlagHandler = std::function<void(const std::string& flag, const std::string& value)>;

/// Calls `handle` for each FLAG VALUE pair of `args`, in order; a flag listed in `switches`
/// takes no value. With `command`, `--` ends the flags and the words after it go to `command`
/// (at least one). Throws std::invalid_argument "unknown flag or missing value: FLAG" for a
/// last word that is not a switch, and whatever `handle` throws.
void for_each_flag(std::span<const std::string> args, const FlagHandler& handle,
                   std::vector<std::string>* command = nullptr,
                   std::initializer_list<const char*> switches = {});

}  // namespace lpk::tunnel
