#pragma once
// A byte buffer for one direction of a connection: reads land at the end, the parser sees the
// unread bytes as one string_view, consumed bytes free the front. It starts small (an idle
// keep-alive connection holds little) and grows, up to a fixed limit, when a head does not fit
// or a read filled all the room it had (a bulk transfer): memory per connection stays bounded
// whatever the body size.

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <cstring>
#include <memory>
#include <string_view>

namespace lpk::router::detail {

class ByteBuffer {
 public:
  ByteBuffer(std::size_t initial, std::size_t limit)
      : data_(std::make_unique<char[]>(initial)), capacity_(initial), limit_(limit) {}

  std::string_view data() const { return {data_.get() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  /// No room for a read: the unread bytes fill the buffer at its limit.
  bool full() const { return begin_ == 0 && end_ == capacity_ && capacity_ == limit_; }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  /// Room for the next read (at least one byte unless full()).
  boost::asio::mutable_buffer prepare() {
    if (begin_ > 0 && capacity_ - end_ < capacity_ / 4) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if ((end_ == capacity_ || filled_) && capacity_ < limit_) grow();
    filled_ = false;
    offered_ = capacity_ - end_;
    return boost::asio::buffer(data_.get() + end_, offered_);
  }
  void commit(std::size_t n) {
    end_ += n;
    filled_ = n > 0 && n == offered_;
  }

 private:
  void grow() {
    auto bigger = std::min(limit_, capacity_ * 2);
    auto data = std::make_unique<char[]>(bigger);
    std::memcpy(data.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    data_ = std::move(data);
    capacity_ = bigger;
  }

  std::unique_ptr<char[]> data_;
  std::size_t capacity_;
  std::size_t limit_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t offered_ = 0;  // the room the last prepare() gave
  bool filled_ = false;      // the last read filled it: more is likely waiting
};

}  // namespace lpk::router::detail
