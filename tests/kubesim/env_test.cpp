#include "tools/kubesim/runtime/env.hpp"

#include <gtest/gtest.h>

#include "kube/text.hpp"
#include "tools/kubesim/certs.hpp"

namespace lpk::kubesim {
namespace {

std::string get(const EnvList& env, const std::string& k) {
  for (const auto& [n, v] : env) {
    if (n == k) return v;
  }
  return "<unset>";
}

json test_pod() {
  return json::parse(R"J({"metadata":{"name":"web-0","namespace":"shop","uid":"u-1",
    "labels":{"app":"web"},"annotations":{"team":"blue"}},
    "spec":{"nodeName":"kubesim-node","serviceAccountName":"sa"},
    "status":{"podIP":"10.244.0.7","podIPs":[{"ip":"10.244.0.7"}],"hostIP":"10.244.0.1"}})J");
}

EnvInputs inputs() {
  EnvInputs in;
  in.lookup = [](const std::string& plural, const std::string& name) -> std::optional<json> {
    if (plural == "configmaps" && name == "cfg") {
      return json::parse(R"J({"data":{"LOG_LEVEL":"debug","1BAD":"x","color":"red"}})J");
    }
    if (plural == "secrets" && name == "db") {
      return json{{"data", {{"password", text::base64_encode("s3cret")}}}};
    }
    return std::nullopt;
  };
  return in;
}

// "Define Dependent Environment Variables" (kubernetes.io tasks/inject-data-application).
TEST(ContainerEnv, DependentVariablesAsInTheDocs) {
  json c = json::parse(R"J({"env":[{"name":"SERVICE_PORT","value":"80"},
    {"name":"SERVICE_IP","value":"172.17.0.1"},
    {"name":"UNCHANGED_REFERENCE","value":"$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)"},
    {"name":"PROTOCOL","value":"https"},
    {"name":"SERVICE_ADDRESS","value":"$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)"},
    {"name":"ESCAPED_REFERENCE","value":"$$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)"}]})J");
  EnvList env = container_env(test_pod(), c, inputs());
  EXPECT_EQ(get(env, "UNCHANGED_REFERENCE"), "$(PROTOCOL)://172.17.0.1:80");
  EXPECT_EQ(get(env, "SERVICE_ADDRESS"), "https://172.17.0.1:80");
  EXPECT_EQ(get(env, "ESCAPED_REFERENCE"), "$(PROTOCOL)://172.17.0.1:80");
}

TEST(ContainerEnv, EnvFromWithPrefixSkipsInvalidNamesAndEnvOverrides) {
  json c = json::parse(R"J({"envFrom":[{"configMapRef":{"name":"cfg"}},
    {"secretRef":{"name":"db"},"prefix":"DB_"},{"configMapRef":{"name":"nope","optional":true}}],
    "env":[{"name":"color","value":"blue"}]})J");
  EnvList env = container_env(test_pod(), c, inputs());
  EXPECT_EQ(get(env, "LOG_LEVEL"), "debug");
  EXPECT_EQ(get(env, "1BAD"), "<unset>");
  EXPECT_EQ(get(env, "DB_password"), "s3cret");
  EXPECT_EQ(get(env, "color"), "blue");
}

TEST(ContainerEnv, ValueFromKeyRefsFieldRefsAndResources) {
  json c = json::parse(R"J({"resources":{"limits":{"memory":"64Mi","cpu":"500m"}},"env":[
    {"name":"PW","valueFrom":{"secretKeyRef":{"name":"db","key":"password"}}},
    {"name":"LVL","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"LOG_LEVEL"}}},
    {"name":"OPT","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"none","optional":true}}},
    {"name":"POD","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}},
    {"name":"NS","valueFrom":{"fieldRef":{"fieldPath":"metadata.namespace"}}},
    {"name":"APP","valueFrom":{"fieldRef":{"fieldPath":"metadata.labels['app']"}}},
    {"name":"TEAM","valueFrom":{"fieldRef":{"fieldPath":"metadata.annotations['team']"}}},
    {"name":"IP","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}},
    {"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}},
    {"name":"MEM_MI","valueFrom":{"resourceFieldRef":{"resource":"limits.memory","divisor":"1Mi"}}},
    {"name":"CPU","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu"}}},
    {"name":"CPU_M","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu","divisor":"1m"}}}]})J");
  EnvList env = container_env(test_pod(), c, inputs());
  EXPECT_EQ(get(env, "PW"), "s3cret");
  EXPECT_EQ(get(env, "LVL"), "debug");
  EXPECT_EQ(get(env, "OPT"), "<unset>");
  EXPECT_EQ(get(env, "POD"), "web-0");
  EXPECT_EQ(get(env, "NS"), "shop");
  EXPECT_EQ(get(env, "APP"), "web");
  EXPECT_EQ(get(env, "TEAM"), "blue");
  EXPECT_EQ(get(env, "IP"), "10.244.0.7");
  EXPECT_EQ(get(env, "NODE"), "kubesim-node");
  EXPECT_EQ(get(env, "MEM_MI"), "64");
  EXPECT_EQ(get(env, "CPU"), "1");  // ceil(0.5 / 1)
  EXPECT_EQ(get(env, "CPU_M"), "500");
}

TEST(ContainerEnv, MissingRequiredKeyIsCreateContainerConfigError) {
  json c = json::parse(
      R"J({"env":[{"name":"X","valueFrom":{"secretKeyRef":{"name":"db","key":"user"}}}]})J");
  EXPECT_THROW(container_env(test_pod(), c, inputs()), EnvError);
  json d = json::parse(R"J({"envFrom":[{"secretRef":{"name":"missing"}}]})J");
  EXPECT_THROW(container_env(test_pod(), d, inputs()), EnvError);
}

TEST(ServiceLinks, VariablesAsKubeletWritesThem) {
  EnvInputs in = inputs();
  in.services = {
      json::parse(R"J({"metadata":{"name":"redis-primary"},"spec":{"clusterIP":"10.96.0.11",
    "ports":[{"name":"redis","port":6379,"protocol":"TCP"},{"port":9121,"protocol":"TCP"}]}})J"),
      json::parse(R"J({"metadata":{"name":"headless"},"spec":{"clusterIP":"None",
    "ports":[{"port":80}]}})J")};
  json c = json::parse(R"J({"env":[{"name":"REDIS_PRIMARY_SERVICE_HOST","value":"mine"},
    {"name":"URL","value":"redis://$(REDIS_PRIMARY_SERVICE_HOST):$(REDIS_PRIMARY_SERVICE_PORT)"}]})J");
  EnvList env = container_env(test_pod(), c, in);
  EXPECT_EQ(get(env, "REDIS_PRIMARY_SERVICE_HOST"), "mine");  // explicit env wins
  EXPECT_EQ(get(env, "URL"), "redis://mine:6379");
  EXPECT_EQ(get(env, "REDIS_PRIMARY_SERVICE_PORT"), "6379");
  EXPECT_EQ(get(env, "REDIS_PRIMARY_SERVICE_PORT_REDIS"), "6379");
  EXPECT_EQ(get(env, "REDIS_PRIMARY_PORT"), "tcp://10.96.0.11:6379");
  EXPECT_EQ(get(env, "REDIS_PRIMARY_PORT_9121_TCP"), "tcp://10.96.0.11:9121");
  EXPECT_EQ(get(env, "REDIS_PRIMARY_PORT_6379_TCP_PROTO"), "tcp");
  EXPECT_EQ(get(env, "REDIS_PRIMARY_PORT_6379_TCP_PORT"), "6379");
  EXPECT_EQ(get(env, "REDIS_PRIMARY_PORT_6379_TCP_ADDR"), "10.96.0.11");
  EXPECT_EQ(get(env, "HEADLESS_SERVICE_HOST"), "<unset>");
}

TEST(Quantity, ParsesDecimalAndBinarySuffixes) {
  EXPECT_DOUBLE_EQ(*parse_quantity("500m"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_quantity("1Gi"), 1073741824.0);
  EXPECT_DOUBLE_EQ(*parse_quantity("2k"), 2000.0);
  EXPECT_FALSE(parse_quantity("lots"));
}

}  // namespace
}  // namespace lpk::kubesim
