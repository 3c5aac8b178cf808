#include "proxy/app/kubectl_plugin.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace lpk::proxy {
namespace {

using Args = std::vector<std::string>;

std::string error_of(const Args& args) {
  try {
    plugin_to_proxy_args(args);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(KubectlPlugin, KnowsItselfByTheProgramName) {
  EXPECT_TRUE(invoked_as_plugin("kubectl-lpk"));
  EXPECT_TRUE(invoked_as_plugin("/usr/local/bin/kubectl-lpk"));
  EXPECT_FALSE(invoked_as_plugin("/usr/bin/lpk-proxy"));
  EXPECT_FALSE(invoked_as_plugin("/opt/kubectl-lpk/lpk-proxy"));
}

TEST(KubectlPlugin, GlobalFlagsAfterTheCommandPassThroughInLpkSpelling) {
  EXPECT_EQ(plugin_to_proxy_args(Args{"connect", "--namespace", "demo", "--service", "api"}),
            (Args{"connect", "-n", "demo", "--service", "api"}));
}

TEST(KubectlPlugin, GlobalFlagsBeforeTheCommandMoveAfterIt) {
  EXPECT_EQ(plugin_to_proxy_args(
                Args{"--context", "kind", "-n", "demo", "--kubeconfig", "/k", "doctor", "--json"}),
            (Args{"doctor", "--context", "kind", "-n", "demo", "--kubeconfig", "/k", "--json"}));
}

TEST(KubectlPlugin, AcceptsTheJoinedFormsKubectlAccepts) {
  EXPECT_EQ(plugin_to_proxy_args(Args{"--namespace=demo", "restore", "-ndev", "--context=c"}),
            (Args{"restore", "-n", "demo", "-n", "dev", "--context", "c"}));
  EXPECT_EQ(plugin_to_proxy_args(Args{"restore", "-n=demo"}), (Args{"restore", "-n", "demo"}));
}

TEST(KubectlPlugin, InitTakesKubectlsFlagsAndConfigDoesNot) {
  EXPECT_EQ(plugin_to_proxy_args(Args{"-n", "demo", "init", "--service", "api"}),
            (Args{"init", "-n", "demo", "--service", "api"}));
  EXPECT_NE(error_of({"config", "validate", "-n", "demo"}).find("asks this machine"),
            std::string::npos);
}

TEST(KubectlPlugin, IdeTakesKubectlsFlagsAfterItsSubcommand) {
  EXPECT_EQ(plugin_to_proxy_args(Args{"-n", "demo", "ide", "vscode", "--service", "api"}),
            (Args{"ide", "vscode", "-n", "demo", "--service", "api"}));
}

TEST(KubectlPlugin, NeverReadsTheChildCommand) {
  EXPECT_EQ(plugin_to_proxy_args(Args{"connect", "-n", "demo", "--", "ls", "-n", "x"}),
            (Args{"connect", "-n", "demo", "--", "ls", "-n", "x"}));
}

TEST(KubectlPlugin, LocalCommandsPassAsTheyAre) {
  EXPECT_EQ(plugin_to_proxy_args(Args{"status", "--json"}), (Args{"status", "--json"}));
  EXPECT_EQ(plugin_to_proxy_args(Args{"resolver", "status"}), (Args{"resolver", "status"}));
}

TEST(KubectlPlugin, RefusesWhatItCannotHonourInOneLine) {
  EXPECT_NE(error_of({"--cluster", "c", "connect"}).find("--cluster is not supported"),
            std::string::npos);
  EXPECT_NE(error_of({"connect", "--user=u"}).find("pick one with --context"), std::string::npos);
  EXPECT_NE(error_of({"status", "-n", "demo"}).find("asks this machine"), std::string::npos);
  EXPECT_NE(error_of({"connect", "--context"}).find("--context needs a value"), std::string::npos);
  EXPECT_NE(error_of({"-n", "demo"}).find("no command given"), std::string::npos);
}

}  // namespace
}  // namespace lpk::proxy
