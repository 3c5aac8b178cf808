#pragma once
// Big-endian cursor over a byte span. A reader that runs past the end remembers it instead of
// reading out of bounds, so parsers check once at the end.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace lpk::tunnel::detail {

class ByteWriter {
 public:
  explicit ByteWriter(std::span<std::byte> out) : out_(out) {}
  void u8(std::uint8_t v) { put(&v, 1); }
  void u16(std::uint16_t v) { std::uint8_t b[2] = {std::uint8_t(v >> 8), std::uint8_t(v)}; put(b, 2); }
  void u32(std::uint32_t v) {
    std::uint8_t b[4] = {std::uint8_t(v >> 24), std::uint8_t(v >> 16), std::uint8_t(v >> 8),
                         std::uint8_t(v)};
    put(b, 4);
  }
  void u64(std::uint64_t v) { u32(std::uint32_t(v >> 32)); u32(std::uint32_t(v)); }
  void bytes(const void* p, std::size_t n) { put(p, n); }
  std::size_t size() const { return pos_; }

 private:
  void put(const void* p, std::size_t n) {
    if (n == 0) return;  // memcpy from an empty view's null pointer is undefined
    std::memcpy(out_.data() + pos_, p, n);  // callers size `out` for the largest frame
    pos_ += n;
  }
  std::span<std::byte> out_;
  std::size_t pos_ = 0;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> in) : in_(in) {}
  std::uint8_t u8() { return take(1) ? std::uint8_t(in_[pos_ - 1]) : 0; }
  std::uint16_t u16() { return std::uint16_t(u8() << 8 | u8()); }
  std::uint32_t u32() { return std::uint32_t(u16()) << 16 | u16(); }
  std::uint64_t u64() { return std::uint64_t(u32()) << 32 | u32(); }
  std::span<const std::byte> bytes(std::size_t n) {
    if (!take(n)) return {};
    return in_.subspan(pos_ - n, n);
  }
  std::string string(std::size_t n) {
    auto b = bytes(n);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  bool ok() const { return ok_; }
  /// True when every byte was consumed and nothing was read past the end.
  bool done() const { return ok_ && pos_ == in_.size(); }

 private:
  bool take(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) return ok_ = false;
    pos_ += n;
    return true;
  }
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace lpk::tunnel::detail
