#pragma once
// The reflector's backoff between watches that broke (client-go tools/cache/reflector.go:
// wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, ...)): 800 ms doubling to 30 s, and
// back to 800 ms once two minutes have passed without a backoff, so that a watch that ran well
// for an hour and then broke (an API server's rolling restart) is retried at once, not after the
// 30 s that breaks an hour ago had built up.

#include <algorithm>
#include <chrono>
#include <optional>

namespace lpk::kube::detail {

class WatchBackoff {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kInitial{800};
  static constexpr std::chrono::milliseconds kMax{30'000};
  static constexpr std::chrono::minutes kResetAfter{2};

  /// How long to wait before the next attempt, a backoff taken at `now`.
  std::chrono::milliseconds next(Clock::time_point now) {
    if (last_ && now - *last_ > kResetAfter) failures_ = 0;
    last_ = now;
    auto d = std::min<std::chrono::milliseconds>(kInitial * (1L << std::min(failures_, 6)), kMax);
    ++failures_;
    return d;
  }
  /// A watch that ended normally after running a while: the next break starts afresh.
  void reset() { failures_ = 0; }

 private:
  int failures_ = 0;
  std::optional<Clock::time_point> last_;
};

}  // namespace lpk::kube::detail
