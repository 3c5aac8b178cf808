#include "proxy/connect/prefixed_output.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>

namespace lpk::proxy {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(PrefixedOutput, PrefixIsPaddedToTheLongestName) {
  EXPECT_EQ(output_prefix("api", 6), "api    | ");
  EXPECT_EQ(output_prefix("worker", 6), "worker | ");
  EXPECT_EQ(output_prefix("longer-than-width", 3), "longer-than-width | ");
}

TEST(PrefixedOutput, OnlyCompleteLinesLeaveThePending) {
  std::string pending = "one\ntwo\nthr";
  EXPECT_EQ(prefixed_lines(pending, "a | "), (std::vector<std::string>{"a | one\n", "a | two\n"}));
  EXPECT_EQ(pending, "thr");
  pending += "ee\n\n";
  EXPECT_EQ(prefixed_lines(pending, "a | "), (std::vector<std::string>{"a | three\n", "a | \n"}));
  EXPECT_EQ(pending, "");
}

TEST(PrefixedOutput, CopiesEveryLineAndEndsTheLastOne) {
  int in[2], out[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  asio::io_context io;
  bool done = false;
  asio::co_spawn(io, copy_prefixed(asio::posix::stream_descriptor(io, in[0]), "w | ", out[1]),
                 [&](std::exception_ptr) { done = true; });
  const std::string text = "first\nsecond\nno newline at the end";
  ASSERT_EQ(write(in[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(in[1]);  // EOF: the command has exited
  io.run_for(10s);
  ASSERT_TRUE(done);
  ::close(out[1]);
  std::string copied(1024, '\0');
  copied.resize(std::max<ssize_t>(0, read(out[0], copied.data(), copied.size())));
  ::close(out[0]);
  EXPECT_EQ(copied, "w | first\nw | second\nw | no newline at the end\n");
}

}  // namespace
}  // namespace lpk::proxy
