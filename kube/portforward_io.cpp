#include "kube/portforward.hpp"

// PortForward's data path: reads, writes and closes on the open WebSocket.
#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <tuple>
#include <vector>

#include "kube/detail/portforward_impl.hpp"

namespace lpk::kube {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using detail::kMaxChunk;
using detail::kTuple;

PortForward::PortForward(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PortForward::~PortForward() { close(); }

std::string PortForward::describe() const { return impl_->description; }
asio::any_io_executor PortForward::executor() const { return impl_->ws.get_executor(); }

void PortForward::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  error_code ec;
  auto& socket = beast::get_lowest_layer(impl_->ws).socket();
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

awaitable<void> PortForward::close_gracefully(std::chrono::milliseconds limit) {
  if (impl_->closed) co_return;
  asio::steady_timer watchdog(impl_->ws.get_executor(), limit);
  watchdog.async_wait([this](error_code ec) {
    if (!ec) close();
  });
  auto [ec] = co_await impl_->ws.async_close(websocket::close_code::normal, kTuple);
  // Read until the server's close frame answers ours (or the watchdog fires).
  while (!ec && !impl_->closed) {
    beast::flat_buffer drain;
    std::tie(ec, std::ignore) = co_await impl_->ws.async_read(drain, kTuple);
  }
  watchdog.cancel();
  close();
}

error_code PortForward::fail(PortForwardErrc code, std::string text) {
  if (!impl_->failed) {
    impl_->failed = code;
    error_text_ = std::move(text);
  }
  close();
  return impl_->failed;
}

awaitable<PortForward::Result> PortForward::read_some(asio::mutable_buffer buffer) {
  auto& s = *impl_;
  while (s.unread.empty()) {
    if (s.failed) co_return Result{s.failed, 0};
    s.message.clear();
    auto [ec, n] = co_await s.ws.async_read(s.message, kTuple);
    if (ec == websocket::error::closed) ec = asio::error::eof;
    if (ec) {
      if (!s.failed) s.failed = ec;
      co_return Result{s.failed, 0};
    }
    if (s.ws.got_text()) {
      co_return Result{
          fail(PortForwardErrc::protocol_error, "a text message in binary v4.channel.k8s.io mode"),
          0};
    }
    auto data = s.message.cdata();
    std::span<const std::uint8_t> bytes(static_cast<const std::uint8_t*>(data.data()), data.size());
    auto m = detail::demux_v4(s.state, bytes, s.port);
    if (m.kind == detail::V4Message::protocol_error) {
      co_return Result{fail(PortForwardErrc::protocol_error, std::move(m.problem)), 0};
    }
    if (m.kind == detail::V4Message::error_text) {
      std::string text(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
      co_return Result{fail(PortForwardErrc::remote_error, std::move(text)), 0};
    }
    if (m.kind == detail::V4Message::data) s.unread = m.payload;
  }
  auto n = asio::buffer_copy(buffer, asio::buffer(s.unread.data(), s.unread.size()));
  s.unread = s.unread.subspan(n);
  co_return Result{error_code{}, n};
}

awaitable<PortForward::Result> PortForward::write(std::span<const asio::const_buffer> buffers) {
  static const std::uint8_t kDataChannel = 0;
  auto& s = *impl_;
  std::size_t total = 0;
  std::vector<asio::const_buffer> message;
  std::size_t index = 0, offset = 0;
  while (index < buffers.size()) {
    // One message: the channel byte, then up to kMaxChunk bytes gathered from the buffers.
    message.assign(1, asio::buffer(&kDataChannel, 1));
    std::size_t size = 0;
    while (index < buffers.size() && size < kMaxChunk) {
      auto take = std::min(buffers[index].size() - offset, kMaxChunk - size);
      if (take > 0) {
        message.push_back(
            asio::buffer(static_cast<const char*>(buffers[index].data()) + offset, take));
      }
      size += take;
      offset += take;
      if (offset == buffers[index].size()) ++index, offset = 0;
    }
    if (size == 0) break;
    if (s.failed) co_return Result{s.failed, total};
    auto [ec, n] = co_await s.ws.async_write(message, kTuple);
    if (ec) co_return Result{ec, total};
    total += size;
  }
  co_return Result{error_code{}, total};
}

}  // namespace lpk::kube
