#pragma once
// The completion token of the agent's coroutines: errors come back as values, not exceptions,
// since a peer that goes away is an ordinary event for the agent.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace lpk::agent {

inline constexpr auto kTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace lpk::agent
