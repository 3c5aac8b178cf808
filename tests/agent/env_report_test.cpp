// The env service's report: the file walker over real directories (kubelet's ..data layout,
// limits, loops, FIFOs, broken links) and the JSON document's shape.
#include "agent/env_report.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kube/text.hpp"
#include "tests/temp_dir.hpp"

namespace lpk::agent {
namespace {

namespace fs = std::filesystem;
using lpk::test::TempDir;

void write(const std::string& path, const std::string& text, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
  ::chmod(path.c_str(), mode);
}

std::vector<std::string> paths(const std::vector<tunnel::AgentFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.path);
  return out;
}

const tunnel::SkippedFile* find_skipped(const FileReport& r, const std::string& path) {
  for (const auto& s : r.skipped) {
    if (s.path == path) return &s;
  }
  return nullptr;
}

/// A configMap volume as the kubelet's atomic writer lays it out.
std::string make_configmap_volume(const TempDir& dir) {
  const auto root = dir.path() + "/config";
  const auto data = root + "/..2024_05_01_10_00_00.123456789";
  write(data + "/app.yaml", "port: 8080\n");
  write(data + "/nested/inner.txt", "inner\n", 0600);
  fs::create_directory_symlink("..2024_05_01_10_00_00.123456789", root + "/..data");
  fs::create_symlink("..data/app.yaml", root + "/app.yaml");
  fs::create_directory_symlink("..data/nested", root + "/nested");
  return root;
}

TEST(FilesChanges, NewChangedGoneAndNewlySkipped) {
  FileReport before{{{"/a", 0644, "1"}, {"/b", 0644, "2"}, {"/c", 0644, "3"}, {"/d", 0644, "4"}},
                    {{"/s", "larger than 1 bytes"}},
                    4};
  FileReport after{{{"/a", 0644, "1"}, {"/b", 0600, "2"}, {"/c", 0644, "33"}, {"/e", 0644, "5"}},
                   {{"/s", "larger than 1 bytes"}, {"/d", "larger than 1 bytes"}},
                   5};
  auto update = files_changes(before, after);
  EXPECT_FALSE(update.full);
  std::vector<std::string> written;
  for (const auto& f : update.files) written.push_back(f.path);
  EXPECT_EQ(written, (std::vector<std::string>{"/b", "/c", "/e"}));  // mode, bytes, new
  EXPECT_EQ(update.removed, std::vector<std::string>{"/d"});  // now skipped: gone locally too
  ASSERT_EQ(update.skipped.size(), 1u);
  EXPECT_EQ(update.skipped[0].path, "/d");
  EXPECT_TRUE(no_changes(files_changes(after, after)));
  auto emptied = files_changes(after, FileReport{});
  EXPECT_EQ(emptied.removed, (std::vector<std::string>{"/a", "/b", "/c", "/e"}));
}

TEST(CollectFiles, ReportsVisibleNamesOfAtomicWriterVolumes) {
  TempDir dir;
  const auto root = make_configmap_volume(dir);
  auto report = collect_files({root}, {});
  EXPECT_EQ(paths(report.files),
            (std::vector<std::string>{root + "/app.yaml", root + "/nested/inner.txt"}));
  EXPECT_TRUE(report.skipped.empty());
  ASSERT_EQ(report.files.size(), 2u);
  EXPECT_EQ(report.files[0].bytes, "port: 8080\n");
  EXPECT_EQ(report.files[0].mode, 0644u);
  EXPECT_EQ(report.files[1].mode, 0600u);
  EXPECT_EQ(report.total_bytes, 11u + 6u);
}

TEST(CollectFiles, DotDotNamesAreKeptOutsideAtomicWriterDirectories) {
  TempDir dir;
  const auto root = dir.path() + "/plain";
  write(root + "/..odd", "kept");
  write(root + "/b/c.txt", "c");
  auto report = collect_files({root}, {});
  EXPECT_EQ(paths(report.files), (std::vector<std::string>{root + "/..odd", root + "/b/c.txt"}));
}

TEST(CollectFiles, SubPathMountOfOneFile) {
  TempDir dir;
  write(dir.path() + "/single.conf", "x=1");
  auto report = collect_files({dir.path() + "/single.conf"}, {});
  EXPECT_EQ(paths(report.files), (std::vector<std::string>{dir.path() + "/single.conf"}));
}

TEST(CollectFiles, PerFileLimitSkipsWithTheReason) {
  TempDir dir;
  write(dir.path() + "/m/small", std::string(100, 's'));
  write(dir.path() + "/m/big", std::string(101, 'b'));
  FileLimits limits;
  limits.per_file = 100;
  auto report = collect_files({dir.path() + "/m"}, limits);
  EXPECT_EQ(paths(report.files), (std::vector<std::string>{dir.path() + "/m/small"}));
  auto* big = find_skipped(report, dir.path() + "/m/big");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->reason, "larger than 100 bytes");
}

TEST(CollectFiles, TotalLimitSkipsTheRest) {
  TempDir dir;
  write(dir.path() + "/m/a", std::string(60, 'a'));
  write(dir.path() + "/m/b", std::string(60, 'b'));
  write(dir.path() + "/m/c", std::string(30, 'c'));
  FileLimits limits;
  limits.total = 100;
  auto report = collect_files({dir.path() + "/m"}, limits);
  // a fits, b would pass the total, c still fits after b was skipped.
  EXPECT_EQ(paths(report.files),
            (std::vector<std::string>{dir.path() + "/m/a", dir.path() + "/m/c"}));
  auto* b = find_skipped(report, dir.path() + "/m/b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->reason, "total limit of 100 bytes reached");
  EXPECT_EQ(report.total_bytes, 90u);
}

TEST(CollectFiles, SymlinkLoopIsCut) {
  TempDir dir;
  const auto root = dir.path() + "/m";
  write(root + "/f", "f");
  fs::create_directory_symlink(root, root + "/loop");
  auto report = collect_files({root}, {});
  EXPECT_EQ(paths(report.files), (std::vector<std::string>{root + "/f"}));
  auto* loop = find_skipped(report, root + "/loop");
  ASSERT_NE(loop, nullptr);
  EXPECT_NE(loop->reason.find("symlink loop"), std::string::npos) << loop->reason;
}

TEST(CollectFiles, FifoBrokenLinkAndMissingRootAreSkippedNotRead) {
  TempDir dir;
  const auto root = dir.path() + "/m";
  fs::create_directories(root);
  ASSERT_EQ(::mkfifo((root + "/pipe").c_str(), 0644), 0);
  fs::create_symlink(root + "/nowhere", root + "/dangling");
  auto report = collect_files({root, dir.path() + "/absent"}, {});
  EXPECT_TRUE(report.files.empty());
  ASSERT_NE(find_skipped(report, root + "/pipe"), nullptr);
  EXPECT_EQ(find_skipped(report, root + "/pipe")->reason, "not a regular file");
  ASSERT_NE(find_skipped(report, root + "/dangling"), nullptr);
  ASSERT_NE(find_skipped(report, dir.path() + "/absent"), nullptr);
}

TEST(CollectFiles, UnreadableFileIsSkipped) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: a mode 000 file is still readable";
  TempDir dir;
  write(dir.path() + "/m/secret", "s", 0000);
  auto report = collect_files({dir.path() + "/m"}, {});
  EXPECT_TRUE(report.files.empty());
  ASSERT_NE(find_skipped(report, dir.path() + "/m/secret"), nullptr);
  EXPECT_NE(find_skipped(report, dir.path() + "/m/secret")->reason.find("cannot read"),
            std::string::npos);
}

TEST(CollectFiles, EntryCapIsReportedOnce) {
  TempDir dir;
  for (int i = 0; i < 10; ++i) write(dir.path() + "/m/f" + std::to_string(i), "x");
  FileLimits limits;
  limits.max_entries = 4;
  auto report = collect_files({dir.path() + "/m", dir.path() + "/m"}, limits);
  EXPECT_EQ(report.files.size(), 4u);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].reason.find("more than 4 entries"), std::string::npos);
}

TEST(EnvironmentDocument, HasTheDocumentedShape) {
  TempDir dir;
  const auto root = make_configmap_volume(dir);
  write(dir.path() + "/big/blob", std::string(2000, 'z'));
  EnvReportOptions options;
  options.mounts = {root, dir.path() + "/big"};
  options.limits.per_file = 1000;
  options.container = "api";
  options.namespace_file = dir.write("namespace", "demo\n");
  std::map<std::string, std::string> env = {{"HOSTNAME", "api-7d9c-x2"},
                                            {"REDIS_PASSWORD", "s3cret"},
                                            {"ODD", std::string("caf\xe9", 4)}};
  auto doc = nlohmann::json::parse(tunnel::encode_environment(environment_report(options, env)));
  EXPECT_EQ(doc["env"]["REDIS_PASSWORD"], "s3cret");
  EXPECT_EQ(doc["env"]["ODD"], "caf\xef\xbf\xbd");  // not UTF-8: replaced, document still valid
  EXPECT_EQ(doc["pod"]["name"], "api-7d9c-x2");
  EXPECT_EQ(doc["pod"]["namespace"], "demo");
  EXPECT_EQ(doc["container"], "api");
  ASSERT_EQ(doc["files"].size(), 2u);
  EXPECT_EQ(doc["files"][0]["path"], root + "/app.yaml");
  EXPECT_EQ(doc["files"][0]["mode"], 420);
  EXPECT_EQ(doc["files"][0]["data"], text::base64_encode("port: 8080\n"));
  ASSERT_EQ(doc["skipped"].size(), 1u);
  EXPECT_EQ(doc["skipped"][0]["path"], dir.path() + "/big/blob");
  EXPECT_EQ(doc["skipped"][0]["reason"], "larger than 1000 bytes");
}

TEST(EnvironmentDocument, PodVariablesWinOverHostnameAndNamespaceFile) {
  TempDir dir;
  EnvReportOptions options;
  options.namespace_file = dir.write("namespace", "from-file");
  std::map<std::string, std::string> env = {
      {"HOSTNAME", "host"}, {"POD_NAME", "pod-1"}, {"POD_NAMESPACE", "ns-1"}};
  auto doc = nlohmann::json::parse(tunnel::encode_environment(environment_report(options, env)));
  EXPECT_EQ(doc["pod"]["name"], "pod-1");
  EXPECT_EQ(doc["pod"]["namespace"], "ns-1");
  EXPECT_EQ(doc["files"], nlohmann::json::array());
  EXPECT_EQ(doc["container"], "");
}

TEST(EnvironmentDocument, TheTunnelSecretIsNeverReported) {
  TempDir dir;
  const auto root = make_configmap_volume(dir);
  const std::string secret(64, 'a');
  write(root + "/..2024_05_01_10_00_00.123456789/tunnel", secret + "\n");
  fs::create_symlink("..data/tunnel", root + "/tunnel");
  EnvReportOptions options;
  options.mounts = {root};
  options.tunnel_secret = secret;
  options.hidden_variables = {"LPK_TUNNEL_SECRET"};
  std::map<std::string, std::string> env = {{"LPK_TUNNEL_SECRET", secret},
                                            {"COPY_OF_IT", secret},
                                            {"ALSO_HIDDEN_BY_NAME", "x"},
                                            {"REDIS_PASSWORD", "s3cret"}};
  options.hidden_variables.push_back("ALSO_HIDDEN_BY_NAME");
  auto report = environment_report(options, env);
  EXPECT_EQ(report.env, (std::map<std::string, std::string>{{"REDIS_PASSWORD", "s3cret"}}));
  EXPECT_EQ(paths(report.files),
            (std::vector<std::string>{root + "/app.yaml", root + "/nested/inner.txt"}));
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].path, root + "/tunnel");
  EXPECT_EQ(report.skipped[0].reason, "holds lpk's tunnel secret");
  EXPECT_EQ(tunnel::encode_environment(report).find(secret), std::string::npos);

  // Without a secret nothing is hidden by value.
  options.tunnel_secret.clear();
  options.hidden_variables.clear();
  EXPECT_EQ(environment_report(options, env).env.size(), 4u);
}

TEST(ProcessEnvironment, ReadsThisProcess) {
  ::setenv("LPK_AGENT_TEST_VAR", "a=b", 1);
  auto env = process_environment();
  EXPECT_EQ(env["LPK_AGENT_TEST_VAR"], "a=b");
}

}  // namespace
}  // namespace lpk::agent
