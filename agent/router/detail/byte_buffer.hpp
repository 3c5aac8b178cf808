#pragma once
// A fixed-capacity byte buffer for one direction of a connection: reads land at the end, the
// parser sees the unread bytes as one string_view, consumed bytes free the front. Allocated
// once per connection (or upstream), never grown: memory per connection stays bounded whatever
// the body size.

#include <boost/asio/buffer.hpp>
#include <cstring>
#include <memory>
#include <string_view>

namespace lpk::router::detail {

class ByteBuffer {
 public:
  explicit ByteBuffer(std::size_t capacity)
      : data_(std::make_unique<char[]>(capacity)), capacity_(capacity) {}

  std::string_view data() const { return {data_.get() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  bool full() const { return begin_ == 0 && end_ == capacity_; }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  /// Space for the next read (at least one byte unless full()); moves unread bytes to the front
  /// when little room is left at the end.
  boost::asio::mutable_buffer prepare() {
    if (begin_ > 0 && capacity_ - end_ < capacity_ / 4) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    return boost::asio::buffer(data_.get() + end_, capacity_ - end_);
  }
  void commit(std::size_t n) { end_ += n; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace lpk::router::detail
