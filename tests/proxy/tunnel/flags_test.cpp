// for_each_flag: the FLAG VALUE walk of both ends' command lines.
#include "proxy/tunnel/flags.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <utility>

namespace lpk::tunnel {
namespace {

using Args = std::vector<std::string>;
using Seen = std::vector<std::pair<std::string, std::string>>;

/// The pairs the walk hands over, in order.
Seen walk(const Args& args, std::vector<std::string>* command = nullptr,
          std::initializer_list<const char*> switches = {}) {
  Seen seen;
  for_each_flag(
      args, [&](const std::string& f, const std::string& v) { seen.emplace_back(f, v); }, command,
      switches);
  return seen;
}

std::string error_of(const Args& args, std::initializer_list<const char*> switches = {}) {
  try {
    walk(args, nullptr, switches);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ForEachFlag, HandsOverPairsInOrder) {
  EXPECT_EQ(walk({"--a", "1", "--b", "--c"}), (Seen{{"--a", "1"}, {"--b", "--c"}}));
  EXPECT_TRUE(walk({}).empty());
}

TEST(ForEachFlag, SwitchesTakeNoValue) {
  EXPECT_EQ(walk({"-h", "--a", "1", "--force"}, nullptr, {"-h", "--force"}),
            (Seen{{"-h", ""}, {"--a", "1"}, {"--force", ""}}));
  // A switch's name as the value of a flag is that flag's value.
  EXPECT_EQ(walk({"--a", "-h"}, nullptr, {"-h"}), (Seen{{"--a", "-h"}}));
}

TEST(ForEachFlag, ALastFlagWithoutValueIsOneLine) {
  EXPECT_EQ(error_of({"--a", "1", "--port"}), "unknown flag or missing value: --port");
  EXPECT_EQ(error_of({"--force", "--x"}, {"--force"}), "unknown flag or missing value: --x");
}

TEST(ForEachFlag, WhatTheHandlerThrowsGoesThrough) {
  auto reject = [](const std::string& f, const std::string&) {
    throw std::invalid_argument("unknown flag " + f);
  };
  Args args{"--bogus", "x"};
  EXPECT_THROW(for_each_flag(args, reject), std::invalid_argument);
}

TEST(ForEachFlag, DoubleDashStartsTheCommandOnlyWhenOneIsWanted) {
  std::vector<std::string> command;
  EXPECT_EQ(walk({"--a", "1", "--", "sh", "-c", "true"}, &command), (Seen{{"--a", "1"}}));
  EXPECT_EQ(command, (Args{"sh", "-c", "true"}));
  EXPECT_THROW(walk({"--"}, &command), std::invalid_argument);
  // Without a command, `--` is a flag like any other.
  EXPECT_EQ(walk({"--", "x"}), (Seen{{"--", "x"}}));
}

}  // namespace
}  // namespace lpk::tunnel
