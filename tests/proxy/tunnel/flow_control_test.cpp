#include "proxy/tunnel/flow_control.hpp"

#include <gtest/gtest.h>

namespace lpk::tunnel {
namespace {

using namespace std::chrono_literals;

// An arbitrary fixed point in time, so the tests never read the clock.
const Clock::time_point t0 = Clock::time_point{} + 1h;

TEST(ReceiveWindow, DataWithinCreditIsAcceptedAndBeyondItIsAViolation) {
  ReceiveWindow w(1000, 8000);
  EXPECT_TRUE(w.on_data(600));
  EXPECT_TRUE(w.on_data(400));
  EXPECT_EQ(w.received(), 1000u);
  EXPECT_FALSE(w.on_data(1));
  EXPECT_EQ(w.received(), 1000u) << "a refused chunk must not count as received";
  EXPECT_TRUE(w.on_data(0));
}

TEST(ReceiveWindow, OneOversizedChunkIsAViolation) {
  ReceiveWindow w(1000, 8000);
  EXPECT_FALSE(w.on_data(1001));
  EXPECT_FALSE(w.on_data(~0ull));
  EXPECT_TRUE(w.on_data(1000));
}

TEST(ReceiveWindow, UpdateIsDueOnceHalfTheWindowWasConsumed) {
  ReceiveWindow w(1000, 1000);
  ASSERT_TRUE(w.on_data(1000));
  EXPECT_FALSE(w.on_consumed(499, t0, 10ms));
  EXPECT_EQ(w.buffered(), 501u);
  auto update = w.on_consumed(1, t0, 10ms);
  ASSERT_TRUE(update);
  EXPECT_EQ(update->consumed, 500u);
  EXPECT_EQ(update->limit, 1500u);
  EXPECT_EQ(w.current().limit, 1500u);
  // The new credit is usable: 500 more bytes fit, 501 do not.
  EXPECT_TRUE(w.on_data(500));
  EXPECT_FALSE(w.on_data(1));
  // No new update until another half window is consumed.
  EXPECT_FALSE(w.on_consumed(499, t0 + 1s, 10ms));
  EXPECT_TRUE(w.on_consumed(1, t0 + 1s, 10ms));
}

TEST(ReceiveWindow, DoublesWhenDrainedWithinTwoRoundTripsUpToTheMaximum) {
  ReceiveWindow w(1000, 4000);
  const auto srtt = 10ms;
  ASSERT_TRUE(w.on_data(500));
  auto u = w.on_consumed(500, t0, srtt);  // first update: nothing to compare with yet
  ASSERT_TRUE(u);
  EXPECT_EQ(w.window(), 1000u);
  ASSERT_TRUE(w.on_data(500));
  u = w.on_consumed(500, t0 + 5ms, srtt);
  ASSERT_TRUE(u);
  EXPECT_EQ(w.window(), 2000u);
  EXPECT_EQ(u->limit, 1000u + 2000u);
  ASSERT_TRUE(w.on_data(1000));
  u = w.on_consumed(1000, t0 + 10ms, srtt);
  ASSERT_TRUE(u);
  EXPECT_EQ(w.window(), 4000u);
  EXPECT_EQ(u->limit, 2000u + 4000u);
  ASSERT_TRUE(w.on_data(2000));
  u = w.on_consumed(2000, t0 + 15ms, srtt);
  ASSERT_TRUE(u);
  EXPECT_EQ(w.window(), 4000u) << "capped at max_window";
  EXPECT_EQ(u->limit, 4000u + 4000u);
}

TEST(ReceiveWindow, CapIsNotAPowerOfTwoMultiple) {
  ReceiveWindow w(1000, 2500);
  ASSERT_TRUE(w.on_data(500));
  ASSERT_TRUE(w.on_consumed(500, t0, 10ms));
  ASSERT_TRUE(w.on_data(500));
  ASSERT_TRUE(w.on_consumed(500, t0 + 1ms, 10ms));
  EXPECT_EQ(w.window(), 2000u);
  ASSERT_TRUE(w.on_data(1000));
  ASSERT_TRUE(w.on_consumed(1000, t0 + 2ms, 10ms));
  EXPECT_EQ(w.window(), 2500u);
}

TEST(ReceiveWindow, SlowReaderNeverGrowsTheWindow) {
  ReceiveWindow w(1000, 1 << 20);
  const auto srtt = 10ms;
  auto now = t0;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(w.on_data(500));
    now += 21ms;  // just over two round trips between updates
    ASSERT_TRUE(w.on_consumed(500, now, srtt)) << i;
    EXPECT_EQ(w.window(), 1000u) << i;
  }
}

TEST(ReceiveWindow, NoRttEstimateMeansNoGrowth) {
  ReceiveWindow w(1000, 1 << 20);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(w.on_data(500));
    ASSERT_TRUE(w.on_consumed(500, t0, Clock::duration::zero()));
  }
  EXPECT_EQ(w.window(), 1000u);
}

TEST(ReceiveWindow, MaximumBelowInitialKeepsTheInitialWindow) {
  ReceiveWindow w(4000, 1000);
  EXPECT_EQ(w.window(), 4000u);
  EXPECT_TRUE(w.on_data(4000));
}

TEST(SendCredit, TracksAvailableCredit) {
  SendCredit c(1000);
  EXPECT_EQ(c.available(), 1000u);
  c.on_sent(600);
  EXPECT_EQ(c.available(), 400u);
  EXPECT_EQ(c.sent(), 600u);
  ASSERT_TRUE(c.on_window({600, 2000}));
  EXPECT_EQ(c.available(), 1400u);
  EXPECT_EQ(c.acked(), 600u);
}

TEST(SendCredit, StaleUpdatesAreIgnored) {
  SendCredit c(1000);
  c.on_sent(800);
  ASSERT_TRUE(c.on_window({800, 3000}));
  // An older update that crossed the newer one: lower limit and ack.
  ASSERT_TRUE(c.on_window({300, 1300}));
  EXPECT_EQ(c.available(), 2200u);
  EXPECT_EQ(c.acked(), 800u);
}

TEST(SendCredit, AckBeyondWhatWasSentIsRejected) {
  SendCredit c(1000);
  c.on_sent(100);
  EXPECT_FALSE(c.on_window({101, 5000}));
  EXPECT_EQ(c.available(), 900u) << "a rejected update grants nothing";
  EXPECT_TRUE(c.on_window({100, 5000}));
  EXPECT_EQ(c.available(), 4900u);
}

}  // namespace
}  // namespace lpk::tunnel
