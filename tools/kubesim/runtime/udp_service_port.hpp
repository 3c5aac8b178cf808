#pragma once
// One UDP port of a Service's ClusterIP, as kube-proxy serves it: each client (source
// address:port) is a flow pinned to one ready endpoint when its first datagram arrives (as a
// conntrack entry pins a DNAT), its datagrams go there from a socket of its own, and the replies
// come back from the ClusterIP:port the client sent to. A flow idle for a minute is forgotten,
// and so is one whose endpoint left the Service (kube-proxy deletes the conntrack entries of a
// removed UDP endpoint): the client's next datagram picks a current endpoint.
//
// Threading: the io_context given; stop() is idempotent.

#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace lpk::kubesim {

class UdpServicePort : public std::enable_shared_from_this<UdpServicePort> {
 public:
  /// A ready endpoint for a new flow (round robin over the Service's endpoints); nullopt drops.
  using PickEndpoint = std::function<std::optional<boost::asio::ip::udp::endpoint>()>;

  /// Binds `vip` in the node namespace; on failure returns null and sets `error`.
  static std::shared_ptr<UdpServicePort> open(boost::asio::io_context& io,
                                              const boost::asio::ip::udp::endpoint& vip,
                                              PickEndpoint pick, std::string& error);
  UdpServicePort(boost::asio::io_context& io, PickEndpoint pick);

  void start();
  void stop();
  void set_pick(PickEndpoint pick) { pick_ = std::move(pick); }
  /// Forgets the flows pinned to an endpoint not in `endpoints` (the Service's current ones).
  void keep_flows_to(const std::set<boost::asio::ip::udp::endpoint>& endpoints);

  static constexpr std::chrono::seconds kIdleTimeout{60};

 private:
  struct Flow;
  boost::asio::awaitable<void> receive_loop();
  std::shared_ptr<Flow> open_flow(const boost::asio::ip::udp::endpoint& client);
  boost::asio::awaitable<void> relay_replies(boost::asio::ip::udp::endpoint client,
                                             std::shared_ptr<Flow> flow);
  boost::asio::awaitable<void> expire(std::shared_ptr<Flow> flow);

  boost::asio::io_context& io_;
  boost::asio::ip::udp::socket socket_;
  PickEndpoint pick_;
  std::map<boost::asio::ip::udp::endpoint, std::shared_ptr<Flow>> flows_;
  bool stopped_ = false;
};

}  // namespace lpk::kubesim
