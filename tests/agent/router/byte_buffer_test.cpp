#include "agent/router/detail/byte_buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace lpk::router::detail {
namespace {

/// Copies `text` into the room prepare() gives (as much as fits); returns how much.
std::size_t read_into(ByteBuffer& b, const std::string& text) {
  auto room = b.prepare();
  auto n = std::min(room.size(), text.size());
  std::memcpy(room.data(), text.data(), n);
  b.commit(n);
  return n;
}

TEST(ByteBuffer, ConsumedBytesFreeTheFrontAndUnreadOnesStayInOrder) {
  ByteBuffer b(16, 64);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(read_into(b, "hello world"), 11u);
  b.consume(6);
  EXPECT_EQ(b.data(), "world");
  read_into(b, "!");
  EXPECT_EQ(b.data(), "world!");
  b.consume(6);
  EXPECT_TRUE(b.empty());
}

TEST(ByteBuffer, GrowsToItsLimitForAHeadThatDoesNotFitThenIsFull) {
  ByteBuffer b(16, 64);
  std::string head(100, 'h');
  std::size_t stored = 0;
  while (!b.full()) stored += read_into(b, head.substr(stored));
  EXPECT_EQ(stored, 64u);
  EXPECT_EQ(b.data(), head.substr(0, 64));
  b.consume(10);
  EXPECT_FALSE(b.full());
  EXPECT_EQ(b.prepare().size(), 10u);  // the unread bytes moved to the front
  EXPECT_EQ(b.data(), head.substr(10, 54));
}

TEST(ByteBuffer, AReadThatFillsTheRoomMakesTheNextRoomBigger) {
  ByteBuffer b(16, 64);
  read_into(b, std::string(16, 'x'));  // filled all 16
  b.consume(16);
  EXPECT_EQ(b.prepare().size(), 32u);
  b.commit(5);  // a short read: no more growth
  b.consume(5);
  EXPECT_EQ(b.prepare().size(), 32u);
}

}  // namespace
}  // namespace lpk::router::detail
