#pragma once
// The completion token of kubesim's coroutines: errors come back as values, not exceptions,
// since a client that goes away is an ordinary event for a server.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace lpk::kubesim {

inline constexpr auto kTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace lpk::kubesim
