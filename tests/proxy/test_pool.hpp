#pragma once
// An address pool for tests that bind service listeners: a /24 of 127/8 of this process's own,
// so that test processes running at once (ctest -j) do not compete for the same addresses.
#include <unistd.h>

#include <boost/asio/ip/network_v4.hpp>
#include <string>

namespace lpk::proxy::test {

inline boost::asio::ip::network_v4 process_pool() {
  const auto pid = static_cast<unsigned>(::getpid());
  return boost::asio::ip::make_network_v4("127." + std::to_string(100 + pid % 100) + "." +
                                          std::to_string((pid / 100) % 256) + ".0/24");
}

}  // namespace lpk::proxy::test
