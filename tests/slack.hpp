#pragma once
// Wall-clock bounds in the unit tests, stretched where the build runs slower: CMake defines
// LPK_TEST_SLACK (4 in a sanitizer build, 1 otherwise; the e2e tests get the same factor as
// LPK_E2E_SLACK). Only upper bounds are stretched (how long something may take); a lower
// bound (a timeout must not fire early) stays as it is.

#include <chrono>

#ifndef LPK_TEST_SLACK
#define LPK_TEST_SLACK 1
#endif

namespace lpk {

inline constexpr int kTestSlack = LPK_TEST_SLACK;

/// `bound` times the build's slack.
template <class Rep, class Period>
constexpr std::chrono::duration<Rep, Period> slack(std::chrono::duration<Rep, Period> bound) {
  return bound * kTestSlack;
}

}  // namespace lpk
