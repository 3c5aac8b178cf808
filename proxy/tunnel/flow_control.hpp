#pragma once
// Per-stream credit, as absolute byte offsets (so a resumed stream can say exactly what
// arrived). Pure logic: the session feeds it events and sends what it returns.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

#include "proxy/tunnel/protocol.hpp"

namespace lpk::tunnel {

using Clock = std::chrono::steady_clock;

/// What this side lets the peer send on one stream. The window starts at the negotiated
/// initial size and doubles (up to `max_window`) whenever the application drains half of it
/// within two round trips: then the window, not the reader, is what limits the stream, as on a
/// long fast link (bandwidth x delay). A slow reader never grows it.
class ReceiveWindow {
 public:
  ReceiveWindow(std::uint32_t initial_window, std::uint32_t max_window)
      : limit_(initial_window), window_(initial_window),
        max_window_(std::max(initial_window, max_window)) {}

  /// `n` bytes arrived. False when they exceed the credit granted: a flow-control violation.
  bool on_data(std::uint64_t n) {
    if (n > limit_ - received_) return false;
    received_ += n;
    return true;
  }

  /// `n` bytes were handed to the application. Returns the update to send, if one is due.
  std::optional<WindowFrame> on_consumed(std::uint64_t n, Clock::time_point now,
                                         Clock::duration srtt) {
    consumed_ += n;
    if (consumed_ + window_ - limit_ < window_ / 2) return std::nullopt;
    if (window_ < max_window_ && srtt.count() > 0 && now - last_update_ < 2 * srtt) {
      window_ = std::min<std::uint64_t>(std::uint64_t(window_) * 2, max_window_);
    }
    last_update_ = now;
    limit_ = consumed_ + window_;
    return WindowFrame{consumed_, limit_};
  }

  WindowFrame current() const { return {consumed_, limit_}; }
  std::uint64_t received() const { return received_; }
  std::uint64_t consumed() const { return consumed_; }
  std::uint64_t buffered() const { return received_ - consumed_; }
  std::uint32_t window() const { return std::uint32_t(window_); }

 private:
  std::uint64_t received_ = 0;
  std::uint64_t consumed_ = 0;
  std::uint64_t limit_;
  std::uint64_t window_;
  std::uint64_t max_window_;
  Clock::time_point last_update_{};
};

/// What the peer lets this side send on one stream.
class SendCredit {
 public:
  explicit SendCredit(std::uint32_t initial_window) : limit_(initial_window) {}

  std::uint64_t available() const { return limit_ - sent_; }
  void on_sent(std::uint64_t n) { sent_ += n; }

  /// Applies a WINDOW frame. Stale updates (a lower limit) are ignored, since frames may
  /// cross; an acknowledgement of bytes never sent is a protocol error (returns false).
  bool on_window(const WindowFrame& w) {
    if (w.consumed > sent_) return false;
    acked_ = std::max(acked_, w.consumed);
    limit_ = std::max(limit_, w.limit);
    return true;
  }

  std::uint64_t sent() const { return sent_; }
  std::uint64_t acked() const { return acked_; }

 private:
  std::uint64_t sent_ = 0;
  std::uint64_t acked_ = 0;
  std::uint64_t limit_;
};

}  // namespace lpk::tunnel
