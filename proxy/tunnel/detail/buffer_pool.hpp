#pragma once
// Fixed-size buffers for DATA chunks, recycled so the data path does not go to malloc for
// every read. Keeps at most `max_free` idle buffers; the rest are freed.

#include <cstddef>
#include <memory>
#include <vector>

namespace lpk::tunnel::detail {

class BufferPool {
 public:
  BufferPool(std::size_t buffer_size, std::size_t max_free)
      : buffer_size_(buffer_size), max_free_(max_free) {}

  std::unique_ptr<std::byte[]> take() {
    if (free_.empty()) return std::make_unique_for_overwrite<std::byte[]>(buffer_size_);
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void give(std::unique_ptr<std::byte[]> b) {
    if (b && free_.size() < max_free_) free_.push_back(std::move(b));
  }
  std::size_t buffer_size() const { return buffer_size_; }
  /// Keeps at most `n` idle buffers from now on.
  void set_max_free(std::size_t n) { max_free_ = n; }
  /// Frees idle buffers beyond `n`.
  void trim(std::size_t n) {
    if (free_.size() > n) free_.resize(n);
  }
  std::size_t idle() const { return free_.size(); }

 private:
  std::size_t buffer_size_;
  std::size_t max_free_;
  std::vector<std::unique_ptr<std::byte[]>> free_;
};

}  // namespace lpk::tunnel::detail
