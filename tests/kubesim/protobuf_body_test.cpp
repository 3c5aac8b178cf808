#include "tools/kubesim/protobuf_body.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

namespace lpk::kubesim {
namespace {

using json = nlohmann::json;

// tests/kubesim/protobuf_bodies: what kubectl 1.32 sent for each `kubectl create` case of
// capture_protobuf_bodies.py (NAME.pb) and what the same command prints with
// --dry-run=client -o json (NAME.json).
const char* const kFixtures[] = {
    "namespace",
    "configmap_literal",
    "configmap_file",
    "configmap_env",
    "secret_generic",
    "secret_env",
    "secret_docker_registry",
    "secret_tls",
    "deployment",
    "deployment_images",
    "deployment_command",
    "service_clusterip",
    "service_headless",
    "service_nodeport",
    "service_loadbalancer",
    "service_externalname",
    "serviceaccount",
    "role",
    "rolebinding",
    "clusterrole",
    "clusterrole_aggregation",
    "clusterrolebinding",
    "job",
};

std::string read_fixture(const std::string& name) {
  std::ifstream f(std::string(LPK_PROTOBUF_FIXTURES) + "/" + name, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read fixture " + name);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

class KubectlCreate : public testing::TestWithParam<const char*> {};

TEST_P(KubectlCreate, DecodesToWhatKubectlPrintsAsJson) {
  std::string name = GetParam();
  auto decoded = decode_protobuf_body(read_fixture(name + ".pb"));
  ASSERT_TRUE(decoded) << name << ": refused";
  json expected = json::parse(read_fixture(name + ".json"));
  EXPECT_EQ(*decoded, expected) << "decoded:  " << decoded->dump()
                                << "\nexpected: " << expected.dump();
}

// Every prefix that ends before the object's last byte cuts runtime.Unknown's raw field: refused.
TEST_P(KubectlCreate, TruncatedBodyIsRefused) {
  std::string body = read_fixture(std::string(GetParam()) + ".pb");
  // runtime.Unknown ends with contentEncoding 3 and contentType 4, both empty: 4 bytes.
  ASSERT_EQ(body.substr(body.size() - 4), std::string("\x1a\x00\x22\x00", 4));
  for (size_t n = 0; n < body.size() - 4; ++n) {
    EXPECT_FALSE(decode_protobuf_body(body.substr(0, n))) << GetParam() << " cut at " << n;
  }
}

// Flipped bytes either leave a body that decodes to JSON that can be written, or are refused.
TEST_P(KubectlCreate, CorruptedBytesNeverCrash) {
  std::string body = read_fixture(std::string(GetParam()) + ".pb");
  std::mt19937 rng(42);
  size_t refused = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bad = body;
    for (int k = 0; k < 3; ++k) bad[4 + rng() % (bad.size() - 4)] = char(rng());
    if (auto out = decode_protobuf_body(bad)) {
      EXPECT_NO_THROW(out->dump());
    } else {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KubectlCreate, testing::ValuesIn(kFixtures),
                         [](const auto& info) { return std::string(info.param); });

// Protobuf built by hand: a field, a message, a body.
std::string varint(uint64_t v) {
  std::string out;
  do {
    out += char((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return out;
}
std::string field(uint32_t n, std::string_view bytes) {
  return varint(uint64_t(n) << 3 | 2) + varint(bytes.size()) + std::string(bytes);
}
std::string number(uint32_t n, uint64_t v) { return varint(uint64_t(n) << 3) + varint(v); }
std::string body(std::string_view api_version, std::string_view kind, std::string_view raw,
                 std::string_view encoding = "") {
  std::string type = field(1, api_version) + field(2, kind);
  return std::string("k8s\0", 4) + field(1, type) + field(2, raw) + field(3, encoding) +
         field(4, "");
}
std::string meta(std::string_view name, std::string_view extra = "") {
  return field(1, field(1, name) + field(8, "") + std::string(extra));
}
std::string entry(std::string_view k, std::string_view v) { return field(1, k) + field(2, v); }

TEST(ProtobufBody, SecretBytesAreBase64InJson) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += char(c);
  auto out = decode_protobuf_body(body("v1", "Secret", meta("s") + field(2, entry("all", all))));
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["data"]["all"],
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"
            "P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9"
            "fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8"
            "vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7"
            "/P3+/w==");
}

TEST(ProtobufBody, UnknownNonZeroFieldIsRefusedAtAnyDepth) {
  std::string cm = meta("c") + field(2, entry("a", "b"));
  EXPECT_TRUE(decode_protobuf_body(body("v1", "ConfigMap", cm)));
  // A field the decoder does not know, sent as its zero value, as Go sends every field.
  EXPECT_TRUE(decode_protobuf_body(body("v1", "ConfigMap", cm + number(99, 0) + field(98, ""))));
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", cm + number(99, 1))));
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", cm + field(98, "x"))));
  // ObjectMeta.uid (5), a fixed64 of field 97, ObjectMeta.creationTimestamp set.
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", meta("c", field(5, "u")))));
  EXPECT_FALSE(decode_protobuf_body(
      body("v1", "ConfigMap", cm + varint(97 << 3 | 1) + std::string("\1\0\0\0\0\0\0\0", 8))));
  EXPECT_FALSE(decode_protobuf_body(
      body("v1", "ConfigMap", field(1, field(1, "c") + field(8, number(1, 1700000000))))));
  // A container's securityContext (15), five messages down in a Deployment.
  std::string container = field(1, "web") + field(2, "nginx");
  auto deployment = [&](std::string_view c) {
    return meta("d") + field(2, field(3, field(2, field(2, c))));
  };
  EXPECT_TRUE(decode_protobuf_body(body("apps/v1", "Deployment", deployment(container))));
  EXPECT_FALSE(decode_protobuf_body(
      body("apps/v1", "Deployment", deployment(container + field(15, number(1, 1))))));
  // An EnvVar's valueFrom (3).
  EXPECT_FALSE(decode_protobuf_body(body(
      "batch/v1", "Job",
      meta("j") +
          field(2, field(6, field(2, field(2, container + field(7, field(3, field(1, "x"))))))))));
}

TEST(ProtobufBody, MalformedFieldsAreRefused) {
  std::string cm = meta("c");
  // metadata as a varint, a name twice, a string and a map key that are not UTF-8.
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", number(1, 5))));
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", cm + cm)));
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", meta("\xff"))));
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", cm + field(2, entry("\xc3", "v")))));
  EXPECT_FALSE(
      decode_protobuf_body(body("v1", "ConfigMap", cm + field(2, entry("k", "\xed\xa0\x80")))));
  // A map entry with a third field; metadata that is not a message.
  EXPECT_FALSE(decode_protobuf_body(
      body("v1", "ConfigMap", cm + field(2, entry("k", "v") + field(3, "x")))));
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", field(1, "\x0a\x05"))));
  // A raw object in another encoding (gzip), an unknown kind, no magic.
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", cm, "gzip")));
  EXPECT_FALSE(decode_protobuf_body(body("v1", "Gadget", cm)));
  EXPECT_FALSE(decode_protobuf_body(body("v1", "ConfigMap", cm).substr(4)));
  // UTF-8 that is fine: two, three and four bytes.
  auto ok = decode_protobuf_body(body("v1", "ConfigMap", cm + field(2, entry("k", "é€😀"))));
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)["data"]["k"], "é€😀");
}

TEST(ProtobufBody, IntOrStringAndPointerFields) {
  std::string port = field(1, "http") + number(3, 80);
  auto service = [&](std::string_view target) {
    return body("v1", "Service", meta("s") + field(2, field(1, port + field(4, target))));
  };
  auto by_name = decode_protobuf_body(service(number(1, 1) + field(3, "web")));
  ASSERT_TRUE(by_name);
  EXPECT_EQ((*by_name)["spec"]["ports"][0]["targetPort"], "web");
  auto by_number = decode_protobuf_body(service(number(1, 0) + number(2, 8080)));
  ASSERT_TRUE(by_number);
  EXPECT_EQ((*by_number)["spec"]["ports"][0]["targetPort"], 8080);
  EXPECT_FALSE(decode_protobuf_body(service(number(1, 2))));
  // replicas is a pointer: sent, it is written even as 0.
  auto zero =
      decode_protobuf_body(body("apps/v1", "Deployment", meta("d") + field(2, number(1, 0))));
  ASSERT_TRUE(zero);
  EXPECT_EQ((*zero)["spec"]["replicas"], 0);
}

}  // namespace
}  // namespace lpk::kubesim
