#include "proxy/app/doctor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "proxy/app/doctor_checks.hpp"
#include "proxy/app/options.hpp"
#include "tests/scoped_env.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::proxy {
namespace {

using Args = std::vector<std::string>;

const Permission* find(const std::vector<Permission>& ps, const std::string& name) {
  auto it = std::find_if(ps.begin(), ps.end(), [&](const auto& p) { return p.name() == name; });
  return it == ps.end() ? nullptr : &*it;
}

bool has_verb(const Permission* p, const std::string& verb) {
  return p && std::find(p->verbs.begin(), p->verbs.end(), verb) != p->verbs.end();
}

TEST(DoctorOptions, ParsesWhatConnectTakes) {
  auto o = parse_doctor_options(Args{"--service", "api", "-n", "demo", "--context", "c", "--json",
                                     "--pool", "127.200.0.0/24", "--resolver"});
  EXPECT_EQ(o.service, "api");
  EXPECT_EQ(o.kube.namespace_override, "demo");
  EXPECT_EQ(o.kube.context, "c");
  EXPECT_TRUE(o.json);
  EXPECT_TRUE(o.system_resolver);
  EXPECT_EQ(o.pool.to_string(), "127.200.0.0/24");
  EXPECT_THROW(parse_doctor_options(Args{"--bogus", "x"}), std::invalid_argument);
  EXPECT_THROW(parse_doctor_options(Args{"--container", "c"}), std::invalid_argument);
}

TEST(DoctorPermissions, TakeoverOfADeployment) {
  auto ps = needed_permissions(false, kube::WorkloadKind::deployment);
  EXPECT_TRUE(has_verb(find(ps, "pods/portforward"), "create"));
  EXPECT_TRUE(has_verb(find(ps, "services"), "watch"));
  EXPECT_TRUE(has_verb(find(ps, "pods"), "delete"));
  EXPECT_FALSE(has_verb(find(ps, "pods"), "create"));
  EXPECT_TRUE(has_verb(find(ps, "configmaps"), "create"));
  EXPECT_TRUE(has_verb(find(ps, "secrets"), "delete"));
  EXPECT_TRUE(has_verb(find(ps, "deployments.apps"), "patch"));
  EXPECT_TRUE(has_verb(find(ps, "deployments.apps"), "update"));
  EXPECT_TRUE(has_verb(find(ps, "replicasets.apps"), "delete"));
  // The restorer's objects.
  EXPECT_TRUE(has_verb(find(ps, "leases.coordination.k8s.io"), "patch"));
  EXPECT_TRUE(has_verb(find(ps, "jobs.batch"), "create"));
  EXPECT_TRUE(has_verb(find(ps, "roles.rbac.authorization.k8s.io"), "create"));
  EXPECT_TRUE(has_verb(find(ps, "rolebindings.rbac.authorization.k8s.io"), "delete"));
  EXPECT_TRUE(has_verb(find(ps, "serviceaccounts"), "delete"));
}

TEST(DoctorPermissions, FollowTheWorkloadKind) {
  auto sts = needed_permissions(false, kube::WorkloadKind::statefulset);
  EXPECT_TRUE(has_verb(find(sts, "statefulsets.apps"), "patch"));
  EXPECT_EQ(find(sts, "deployments.apps"), nullptr);
  EXPECT_EQ(find(sts, "replicasets.apps"), nullptr);
  auto pod = needed_permissions(false, kube::WorkloadKind::pod);
  EXPECT_TRUE(has_verb(find(pod, "pods"), "create"));
}

TEST(DoctorPermissions, OutboundOnlyCreatesItsOwnDeploymentAndNoConfigMap) {
  auto ps = needed_permissions(true, kube::WorkloadKind::deployment);
  EXPECT_TRUE(has_verb(find(ps, "deployments.apps"), "create"));
  EXPECT_TRUE(has_verb(find(ps, "deployments.apps"), "delete"));
  EXPECT_TRUE(has_verb(find(ps, "pods/portforward"), "create"));
  EXPECT_TRUE(has_verb(find(ps, "secrets"), "create"));
  EXPECT_EQ(find(ps, "configmaps"), nullptr);
}

TEST(DoctorPermissions, GrantCommandNamesVerbsAndResource) {
  Permission p{"", "pods", "portforward", {"create", "get"}};
  EXPECT_EQ(grant_command(p, "demo"),
            "kubectl create role lpk-pods-portforward -n demo --verb=create,get "
            "--resource=pods/portforward && kubectl create rolebinding lpk-pods-portforward -n "
            "demo --role=lpk-pods-portforward --user=YOU");
  EXPECT_EQ((Permission{"apps", "deployments", "", {"get"}}).name(), "deployments.apps");
}

TEST(DoctorOutput, OneLinePerCheckWithTheFixOnFailure) {
  EXPECT_EQ(check_line({"kubeconfig", true, "context c", ""}), "ok   kubeconfig: context c");
  EXPECT_EQ(check_line({"service", false, "service x not found", "list them"}),
            "FAIL service: service x not found; fix: list them");
  EXPECT_EQ(check_line({"agent image", true, "not checked", "try this"}),
            "warn agent image: not checked; try this");
  auto j = checks_json({{"a", true, "d", ""}, {"b", false, "e", "f"}});
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1], (nlohmann::json{{"name", "b"}, {"ok", false}, {"detail", "e"}, {"fix", "f"}}));
}

TEST(DoctorChecks, ADeadSessionRecordFailsWithRestore) {
  test::TempDir state;
  test::ScopedEnv env{{"XDG_STATE_HOME", state.path()}};
  EXPECT_TRUE(check_dead_sessions().ok);
  SessionOwner gone = SessionOwner::current("feedbeef");
  gone.process_start = "1";  // not this process's start: the session's process is gone
  SessionRecord record{gone, {kube::WorkloadKind::deployment, "demo", "api"}, "/k", "c"};
  record.save();
  auto check = check_dead_sessions();
  EXPECT_FALSE(check.ok);
  EXPECT_NE(check.detail.find("session feedbeef"), std::string::npos) << check.detail;
  EXPECT_NE(check.detail.find("deployment demo/api"), std::string::npos) << check.detail;
  EXPECT_EQ(check.fix, "run `lpk-proxy restore --kubeconfig /k --context c`");
  record.erase();
}

TEST(DoctorChecks, AResolverHeldByALiveSessionFailsOnlyWithResolver) {
  test::TempDir state;
  test::ScopedEnv env{{"XDG_STATE_HOME", state.path()}};
  const std::filesystem::path lpk_state = std::filesystem::path(state.path()) / "lpk";
  std::filesystem::create_directories(lpk_state);
  // The record connect --resolver keeps (connect/session_resolver.cpp), of a live session: this
  // test process.
  std::ofstream(lpk_state / "resolver.json") << nlohmann::json{
      {"owner", SessionOwner::current("cafe0001").to_json()},
      {"address", "127.77.0.53"}}.dump();
  DoctorOptions options;
  auto without = check_system_resolver(options, "demo");
  EXPECT_TRUE(without.ok) << without.detail;
  EXPECT_NE(without.detail.find("held by lpk session cafe0001"), std::string::npos)
      << without.detail;
  options.system_resolver = true;
  auto with = check_system_resolver(options, "demo");
  EXPECT_FALSE(with.ok);
  EXPECT_EQ(with.detail, "lpk session cafe0001 has the system resolver");
  EXPECT_EQ(with.fix, "end that session, or connect without --resolver");
}

}  // namespace
}  // namespace lpk::proxy
