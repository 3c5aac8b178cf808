#pragma once
// The bytes one stream has read from its local socket, kept until they may be forgotten: once
// written to the link, or, in a resumable session, once the peer has them (docs/protocol.md §6).
// Chunks are the pool buffers the bytes were read into, so keeping them costs no copy. Offsets
// are absolute, as in WINDOW frames. Pure bookkeeping: no I/O.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

namespace lpk::tunnel {

class SendBuffer {
 public:
  /// `chunk_capacity`: the size of the buffers appended (the pool's).
  explicit SendBuffer(std::size_t chunk_capacity) : capacity_(chunk_capacity) {}

  /// A run of held bytes: `size` bytes at `data`, ending at stream offset `end`.
  struct Slice {
    const std::byte* data;
    std::size_t size;
    std::uint64_t end;
  };

  /// Holds the next `size` bytes of the stream (in `buffer`); returns the offset after them.
  std::uint64_t append(std::unique_ptr<std::byte[]> buffer, std::size_t size) {
    chunks_.push_back({std::move(buffer), end_, size});
    end_ += size;
    held_ += size;
    return end_;
  }

  /// Free space after the bytes of the last chunk still held, to read the next bytes into
  /// (then extend_tail()): small reads share a chunk instead of holding a buffer each, so what
  /// is held stays close to the bytes it holds. Empty when nothing is held.
  std::span<std::byte> tail_room() {
    if (chunks_.empty()) return {};
    auto& c = chunks_.back();
    return {c.buffer.get() + c.size, capacity_ - c.size};
  }
  /// Bytes in the last chunk still held (0 when none is).
  std::size_t tail_size() const { return chunks_.empty() ? 0 : chunks_.back().size; }
  /// The `n` bytes just read into tail_room() join the stream; returns the offset after them.
  std::uint64_t extend_tail(std::size_t n) {
    chunks_.back().size += n;
    end_ += n;
    held_ += n;
    return end_;
  }

  /// Forgets every chunk that lies wholly below `offset`, handing its buffer to `give`.
  template <typename Give>
  void release_below(std::uint64_t offset, Give&& give) {
    while (!chunks_.empty() && chunks_.front().offset + chunks_.front().size <= offset) {
      held_ -= chunks_.front().size;
      give(std::move(chunks_.front().buffer));
      chunks_.pop_front();
    }
  }

  /// The held bytes from `offset` on, in order. False when `offset` is not within what is
  /// held (below the first held byte, or beyond the last byte appended).
  bool slices_from(std::uint64_t offset, std::vector<Slice>& out) const {
    if (offset < begin() || offset > end_) return false;
    for (const auto& c : chunks_) {
      const auto chunk_end = c.offset + c.size;
      if (chunk_end <= offset) continue;
      const auto skip = offset > c.offset ? offset - c.offset : 0;
      out.push_back({c.buffer.get() + skip, std::size_t(c.size - skip), chunk_end});
    }
    return true;
  }

  /// First byte still held (== end() when nothing is).
  std::uint64_t begin() const { return chunks_.empty() ? end_ : chunks_.front().offset; }
  /// The offset after the last byte appended: every byte read so far.
  std::uint64_t end() const { return end_; }
  std::size_t bytes_held() const { return held_; }

 private:
  struct Chunk {
    std::unique_ptr<std::byte[]> buffer;
    std::uint64_t offset;
    std::size_t size;
  };
  std::size_t capacity_;
  std::deque<Chunk> chunks_;
  std::uint64_t end_ = 0;
  std::size_t held_ = 0;
};

}  // namespace lpk::tunnel
