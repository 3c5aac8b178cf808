// lpk-kube: manual checks of lpk's Kubernetes client against a cluster.
//   lpk-kube [--kubeconfig F] [--context C] [-n NS] config | get PATH | list PATH [-l SEL] | watch PATH [-l SEL]
// PATH is an API path; "{ns}" in it is replaced by the chosen namespace.
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "kube/client.hpp"
#include "kube/config.hpp"

namespace {

constexpr const char* kUsage =
    "usage: lpk-kube [--kubeconfig F] [--context C] [-n NS] config | get PATH | list PATH [-l SEL] "
    "| watch PATH [-l SEL]";

std::stop_source g_stop;

int fail(const std::string& what) {
  std::cerr << "lpk-kube: " << what << "\n";
  return 2;
}

std::string with_namespace(std::string path, const std::string& ns) {
  for (size_t at; (at = path.find("{ns}")) != std::string::npos;) path.replace(at, 4, ns);
  return path;
}

nlohmann::json describe(const lpk::kube::RestConfig& rc) {
  const auto& u = rc.user;
  std::string auth = u.exec                     ? "exec " + u.exec->command
                     : !u.token_file.empty()    ? "tokenFile " + u.token_file
                     : !u.token.empty()         ? "token"
                     : !u.username.empty()      ? "basic " + u.username
                     : !u.client_cert_pem.empty() ? "client certificate"
                                                  : "none";
  return {{"source", rc.source},        {"context", rc.context_name},
          {"server", rc.cluster.server}, {"namespace", rc.namespace_},
          {"auth", auth},               {"impersonate", u.impersonate_user},
          {"tlsServerName", rc.cluster.tls_server_name},
          {"insecure", rc.cluster.insecure_skip_tls_verify},
          {"proxy", lpk::kube::proxy_for(rc.cluster)}};
}

}  // namespace

int main(int argc, char** argv) {
  lpk::kube::LoadOptions opts;
  std::vector<std::string> words;
  std::string selector;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--kubeconfig" && (v = value())) opts.kubeconfig = v;
    else if (a == "--context" && (v = value())) opts.context = v;
    else if ((a == "-n" || a == "--namespace") && (v = value())) opts.namespace_override = v;
    else if ((a == "-l" || a == "--selector") && (v = value())) selector = v;
    else if (a == "-v") spdlog::set_level(spdlog::level::debug);
    else if (!a.empty() && a[0] == '-') return fail("unknown or incomplete option '" + a + "' (" + kUsage + ")");
    else words.push_back(a);
  }
  if (words.empty()) return fail(std::string("missing command (") + kUsage + ")");
  const std::string& cmd = words[0];
  if (cmd != "config" && words.size() != 2) return fail(cmd + " needs one API path (" + kUsage + ")");
  try {
    auto rc = lpk::kube::load_config(opts);
    if (cmd == "config") {
      std::cout << describe(rc).dump(2) << "\n";
      return 0;
    }
    lpk::kube::Client client(rc);
    std::string path = with_namespace(words[1], rc.namespace_);
    if (cmd == "get") {
      std::cout << client.get(path).dump(2) << "\n";
    } else if (cmd == "list") {
      std::cout << client.list(path, {.label_selector = selector}).dump(2) << "\n";
    } else if (cmd == "watch") {
      std::signal(SIGINT, [](int) { g_stop.request_stop(); });
      client.watch(
          path, {.label_selector = selector},
          [](const nlohmann::json& l) {
            std::cout << "LIST " << l["metadata"].value("resourceVersion", "") << " "
                      << l["items"].size() << " items" << std::endl;
          },
          [](const lpk::kube::WatchEvent& e) {
            std::cout << e.type << " " << e.object["metadata"].value("name", "") << " "
                      << e.object["metadata"].value("resourceVersion", "") << std::endl;
          },
          g_stop.get_token());
    } else {
      return fail("unknown command '" + cmd + "' (" + kUsage + ")");
    }
  } catch (const std::exception& e) {
    std::cerr << "lpk-kube: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
