// The agent services' one definition: the env document's encoder and parser (round trip, and
// malformed documents naming the field), service names, and the loopback pair both ends use.
#include "proxy/tunnel/agent_services.hpp"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "proxy/tunnel/loopback_pair.hpp"
#include "tests/proxy/tunnel/test_util.hpp"

namespace lpk::tunnel {
namespace {

using namespace lpk::tunnel::test;

TEST(FilesUpdate, RoundTripsAsOneLine) {
  FilesUpdate update{false, {{"/etc/a", 0644, std::string("x\0y\n", 4)}}, {"/etc/gone"},
                     {{"/etc/big", "larger than 1 bytes"}}};
  auto line = encode_files_update(update);
  ASSERT_EQ(line.find('\n'), line.size() - 1);
  auto parsed = parse_files_update(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_FALSE(parsed->full);
  ASSERT_EQ(parsed->files.size(), 1u);
  EXPECT_EQ(parsed->files[0].bytes, std::string("x\0y\n", 4));
  EXPECT_EQ(parsed->removed, std::vector<std::string>{"/etc/gone"});
  ASSERT_EQ(parsed->skipped.size(), 1u);
  EXPECT_EQ(parsed->skipped[0].reason, "larger than 1 bytes");
}

TEST(FilesUpdate, MalformedMessagesNameTheField) {
  auto why = [](std::string_view line) {
    auto parsed = parse_files_update(line);
    EXPECT_FALSE(parsed);
    if (parsed) return std::string();
    EXPECT_EQ(parsed.error().code, make_error_code(Error::bad_document));
    return parsed.error().message;
  };
  EXPECT_NE(why("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(why(R"({"files":[],"removed":[],"skipped":[]})").find("full"), std::string::npos);
  EXPECT_NE(why(R"({"full":true,"files":[],"removed":[1],"skipped":[]})").find("removed[0]"),
            std::string::npos);
  EXPECT_NE(why(R"({"full":true,"files":[{"path":"/a","mode":70000,"data":""}],)"
                R"("removed":[],"skipped":[]})")
                .find("files[0].mode"),
            std::string::npos);
}

TEST(EncodeEnvironment, RoundTripsThroughTheParser) {
  AgentEnvironment env;
  env.env = {{"A", "1"}, {"MULTI", "line\nvalue"}};
  env.files = {{"/etc/c/app.yaml", 0644, std::string("bin\0ary\xff", 8)}};
  env.skipped = {{"/etc/big", "larger than 10 bytes"}};
  env.pod_name = "api-1";
  env.pod_namespace = "demo";
  env.container = "api";
  auto parsed = parse_environment(encode_environment(env));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->env, env.env);
  ASSERT_EQ(parsed->files.size(), 1u);
  EXPECT_EQ(parsed->files[0].bytes, env.files[0].bytes) << "file contents are exact";
  EXPECT_EQ(parsed->files[0].mode, 0644u);
  EXPECT_EQ(parsed->skipped.at(0).reason, "larger than 10 bytes");
  EXPECT_EQ(parsed->pod_name, "api-1");
  EXPECT_EQ(parsed->pod_namespace, "demo");
  EXPECT_EQ(parsed->container, "api");
}

TEST(EncodeEnvironment, NonUtf8TextIsReplacedAndTheDocumentStaysValid) {
  AgentEnvironment env;
  env.env = {{"ODD", std::string("caf\xe9", 4)}};
  auto parsed = parse_environment(encode_environment(env));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->env.at("ODD"), "caf\xef\xbf\xbd");
}

TEST(ParseEnvironment, ValidMinimalDocument) {
  auto env = parse_environment(R"({"env":{"A":"1"},"files":[],"skipped":[]})");
  ASSERT_TRUE(env.has_value()) << env.error().message;
  EXPECT_EQ(env->env.at("A"), "1");
  EXPECT_TRUE(env->pod_name.empty());
  EXPECT_TRUE(env->container.empty());
  auto full = parse_environment(
      R"({"env":{},"files":[{"path":"/etc/c/x","mode":384,"data":"aGk="}],)"
      R"("skipped":[{"path":"/d","reason":"r"}],"pod":{"name":"p","namespace":"n"},)"
      R"("container":"c"})");
  ASSERT_TRUE(full.has_value()) << full.error().message;
  EXPECT_EQ(full->files.at(0).bytes, "hi");
  EXPECT_EQ(full->files.at(0).mode, 0600u);
  EXPECT_EQ(full->skipped.at(0).reason, "r");
  EXPECT_EQ(full->pod_namespace, "n");
  EXPECT_EQ(full->container, "c");
}

TEST(ParseEnvironment, MalformedDocumentsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"env\":", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"env":[],"files":[],"skipped":[]})", "env is not an object"},
      {R"({"env":{"A":1},"files":[],"skipped":[]})", "env.A is not a string"},
      // The peer's name, shown on one line.
      {R"({"env":{"A\nB\u0001":1},"files":[],"skipped":[]})", "env.A\\x0aB\\x01 is not a string"},
      {R"({"env":{},"skipped":[]})", "files is not an array"},
      {R"({"env":{},"files":[{"path":"/x","mode":420}],"skipped":[]})", "files[0].data is missing"},
      {R"({"env":{},"files":[{"path":"/x","mode":"420","data":""}],"skipped":[]})",
       "files[0].mode is not a file mode"},
      {R"({"env":{},"files":[{"path":"/x","mode":420,"data":"a$=="}],"skipped":[]})",
       "files[0].data is not base64"},
      {R"({"env":{},"files":[{"path":"/x","mode":420,"data":"abc"}],"skipped":[]})",
       "files[0].data is not base64"},
      {R"({"env":{},"files":[],"skipped":[{"path":"/x"}]})", "skipped[0].reason is missing"},
      {R"({"env":{},"files":[],"skipped":[],"pod":"p"})", "pod is not an object"},
      {R"({"env":{},"files":[],"skipped":[],"container":7})", "container is not a string"},
  };
  for (const auto& [doc, expected] : cases) {
    auto env = parse_environment(doc);
    ASSERT_FALSE(env.has_value()) << doc;
    EXPECT_EQ(env.error().code, Error::bad_document);
    EXPECT_NE(env.error().message.find(expected), std::string::npos)
        << doc << " -> " << env.error().message;
  }
}

TEST(ServiceName, InsideLpkInternalInAnyCase) {
  EXPECT_TRUE(is_service_name("env.lpk.internal"));
  EXPECT_TRUE(is_service_name("DNS.LPK.Internal."));
  EXPECT_TRUE(is_service_name("lpk.internal"));
  EXPECT_FALSE(is_service_name("notlpk.internal"));
  EXPECT_FALSE(is_service_name("env.lpk.internal.example.com"));
  EXPECT_FALSE(is_service_name(""));
}

TEST(LoopbackPair, IsConnectedBothWays) {
  asio::io_context io;
  auto pair = loopback_pair(io.get_executor());
  ASSERT_TRUE(pair);
  auto& [a, b] = *pair;
  EXPECT_EQ(a.local_endpoint(), b.remote_endpoint());
  asio::write(a, asio::buffer(std::string("ping")));
  std::array<char, 4> got{};
  asio::read(b, asio::buffer(got));
  EXPECT_EQ(std::string(got.data(), 4), "ping");
}

}  // namespace
}  // namespace lpk::tunnel
