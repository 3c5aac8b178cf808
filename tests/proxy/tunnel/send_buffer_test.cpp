// The bookkeeping behind resumption: what a stream keeps of the bytes it sent, and from which
// offset it can send them again.
#include "proxy/tunnel/send_buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace lpk::tunnel {
namespace {

constexpr std::size_t kCapacity = 16;

std::unique_ptr<std::byte[]> chunk_of(const std::string& text) {
  auto b = std::make_unique<std::byte[]>(kCapacity);
  std::memcpy(b.get(), text.data(), text.size());
  return b;
}

// The held bytes from `offset` on, as one string (empty with ok = false when out of range).
std::string from(const SendBuffer& buffer, std::uint64_t offset, bool& ok) {
  std::vector<SendBuffer::Slice> slices;
  ok = buffer.slices_from(offset, slices);
  std::string out;
  std::uint64_t at = offset;
  for (const auto& s : slices) {
    out.append(reinterpret_cast<const char*>(s.data), s.size);
    at += s.size;
    EXPECT_EQ(s.end, at) << "each slice says where it ends";
  }
  return out;
}

std::string from(const SendBuffer& buffer, std::uint64_t offset) {
  bool ok = false;
  auto s = from(buffer, offset, ok);
  EXPECT_TRUE(ok) << "offset " << offset;
  return s;
}

TEST(SendBuffer, SendsAgainFromAnyOffsetInsideOrBetweenChunks) {
  SendBuffer b(kCapacity);
  EXPECT_EQ(b.append(chunk_of("abcdefgh"), 8), 8u);
  EXPECT_EQ(b.append(chunk_of("ijkl"), 4), 12u);
  EXPECT_EQ(b.append(chunk_of("mnopqrst"), 8), 20u);
  const std::string all = "abcdefghijklmnopqrst";
  for (std::uint64_t at = 0; at <= all.size(); ++at) {
    EXPECT_EQ(from(b, at), all.substr(at)) << "from " << at;
  }
  EXPECT_EQ(b.bytes_held(), 20u);
}

TEST(SendBuffer, ReleasesOnlyWholeChunksBelowTheOffset) {
  SendBuffer b(kCapacity);
  b.append(chunk_of("abcdefgh"), 8);
  b.append(chunk_of("ijkl"), 4);
  int given = 0;
  auto give = [&](std::unique_ptr<std::byte[]> p) { given += p != nullptr; };
  b.release_below(7, give);  // inside the first chunk: nothing goes
  EXPECT_EQ(given, 0);
  EXPECT_EQ(b.begin(), 0u);
  b.release_below(8, give);
  EXPECT_EQ(given, 1);
  EXPECT_EQ(b.begin(), 8u);
  EXPECT_EQ(b.bytes_held(), 4u);
  EXPECT_EQ(from(b, 9), "jkl");
  bool ok = true;
  from(b, 7, ok);
  EXPECT_FALSE(ok) << "bytes already let go cannot be sent again";
  from(b, 13, ok);
  EXPECT_FALSE(ok) << "nor bytes never read (a peer acknowledging bytes never sent)";
  b.release_below(1000, give);
  EXPECT_EQ(given, 2);
  EXPECT_EQ(b.bytes_held(), 0u);
  EXPECT_EQ(b.begin(), 12u) << "nothing held: begin is the end";
  EXPECT_EQ(from(b, 12), "");
}

TEST(SendBuffer, SmallReadsShareTheLastChunk) {
  SendBuffer b(kCapacity);
  EXPECT_TRUE(b.tail_room().empty()) << "no chunk yet";
  b.append(chunk_of("ab"), 2);
  for (char c = 'c'; c <= 'p'; ++c) {
    auto room = b.tail_room();
    if (room.empty()) break;
    room[0] = std::byte(c);
    b.extend_tail(1);
  }
  EXPECT_TRUE(b.tail_room().empty()) << "the chunk is full";
  EXPECT_EQ(b.end(), kCapacity);
  EXPECT_EQ(b.bytes_held(), kCapacity);
  EXPECT_EQ(from(b, 0), "abcdefghijklmnop");
  EXPECT_EQ(from(b, 15), "p");
  int given = 0;
  b.release_below(15, [&](auto) { ++given; });
  EXPECT_EQ(given, 0) << "a chunk goes only when all of it is below the offset";
}

TEST(SendBuffer, ManyChunksAreLetGoInOrder) {
  SendBuffer b(kCapacity);
  std::uint64_t end = 0;
  for (int i = 0; i < 1000; ++i) end = b.append(chunk_of("0123456789abcdef"), 16);
  EXPECT_EQ(end, 16000u);
  b.release_below(8000, [](auto) {});
  EXPECT_EQ(b.bytes_held(), 8000u);
  EXPECT_EQ(from(b, 15999), "f");
  b.release_below(end, [](auto) {});
  EXPECT_EQ(b.bytes_held(), 0u);
  EXPECT_EQ(b.begin(), 16000u);
}

}  // namespace
}  // namespace lpk::tunnel
