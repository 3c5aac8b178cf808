#pragma once
// A pod port-forward (kube::PortForward) as the link a tunnel session runs over.

#include <memory>
#include <string>

#include "kube/auth.hpp"
#include "kube/config.hpp"
#include "kube/portforward.hpp"
#include "proxy/tunnel/link.hpp"
#include "proxy/tunnel/client.hpp"

namespace lpk::proxy {

class PortForwardLink final : public tunnel::Link {
 public:
  explicit PortForwardLink(std::unique_ptr<kube::PortForward> forward);

  boost::asio::awaitable<Result> read_some(boost::asio::mutable_buffer buffer) override;
  boost::asio::awaitable<Result> write(std::span<const boost::asio::const_buffer> buffers) override;
  void close() override { forward_->close(); }
  std::string describe() const override { return forward_->describe(); }
  boost::asio::any_io_executor executor() override { return forward_->executor(); }

 private:
  std::unique_ptr<kube::PortForward> forward_;
  bool reported_ = false;
};

/// A TunnelClient dialer that opens a new port-forward to `pod`:`port` on every call, with the
/// credentials of that moment (an exec plugin runs off the I/O thread; after a 401 it runs
/// again once). `credentials` must outlive the dialer. A configuration the API server can never
/// accept (bad URL or PEM, refused subprotocol) is fatal; anything else is retried.
tunnel::LinkDialer portforward_link_dialer(const kube::RestConfig& config, kube::Credentials& credentials,
                                   std::string pod_namespace, std::string pod, std::uint16_t port);

}  // namespace lpk::proxy
