#include "proxy/app/project_commands.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "kube/client.hpp"
#include "proxy/app/options.hpp"
#include "proxy/app/project_file.hpp"
#include "proxy/control/console.hpp"
#include "proxy/takeover/takeover.hpp"
#include "proxy/tunnel/flags.hpp"

namespace lpk::proxy {

namespace fs = std::filesystem;
using std::invalid_argument;

int run_config(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "validate" || args.size() > 2) {
    std::cerr << kConfigUsage << "\n";
    return 2;
  }
  auto path = args.size() == 2 ? std::optional<fs::path>(args[1])
                               : find_project_file(fs::current_path());
  if (!path) {
    return fail(std::string("no ") + kProjectFileName + " in this folder or above it (up to a "
                "repository's root); give its path, or write one with `lpk-proxy init`");
  }
  auto loaded = load_project_file(*path);
  for (const auto& e : loaded.errors) std::cout << describe_error(*path, e) << "\n";
  if (!loaded.errors.empty()) return 1;
  std::cout << path->string() << ": ok (" << loaded.file.services.size() << " service"
            << (loaded.file.services.size() == 1 ? "" : "s") << ")\n";
  return 0;
}

namespace {

struct InitOptions {
  std::string service;
  kube::LoadOptions kube;
  std::string file = kProjectFileName;
  bool force = false;
};

InitOptions parse_init_options(const std::vector<std::string>& args) {
  InitOptions o;
  auto handle = [&](const std::string& flag, const std::string& value) {
    if (flag == "--force") o.force = true;
    else if (flag == "--service") o.service = value;
    else if (flag == "-n" || flag == "--namespace") o.kube.namespace_override = value;
    else if (flag == "--kubeconfig") o.kube.kubeconfig = value;
    else if (flag == "--context") o.kube.context = value;
    else if (flag == "--file") o.file = value;
    else throw invalid_argument("unknown flag " + flag);
  };
  tunnel::for_each_flag(args, handle, nullptr, {"--force"});
  if (o.service.empty()) throw invalid_argument("--service NAME is required: the service to run");
  return o;
}

/// The other containers of the workload's pods, which stay as they are.
std::string other_containers(const TakeoverTarget& target) {
  std::string others;
  auto containers = target.object.value(nlohmann::json::json_pointer("/spec/template/spec/containers"),
                                        nlohmann::json::array());
  for (const auto& c : containers) {
    auto name = c.value("name", "");
    if (name != target.container.name) others += (others.empty() ? "" : ", ") + name;
  }
  return others;
}

std::string starter_file(const TakeoverTarget& target, const std::string& ns,
                         const std::string& context) {
  std::ostringstream out;
  out << "# lpk.yaml: what `lpk-proxy connect` (or `kubectl lpk connect`) does when run in this\n"
      << "# folder or below it. Written by `lpk-proxy init` from " << target.workload.describe()
      << ";\n# every key is described in lpk's docs/project-file.md, and docs/lpk.schema.json lets\n"
      << "# editors complete and check it. Flags given to connect win over the file.\n"
      << "namespace: " << ns << "\n"
      << (context.empty() ? "# context: my-cluster   # default: the kubeconfig's current context\n"
                          : "context: " + context + "\n")
      << "services:\n"
      << "  - name: " << target.service["metadata"].value("name", "") << "\n"
      << "    # the container lpk-agent replaces";
  auto others = other_containers(target);
  out << (others.empty() ? "" : " (the pods also run " + others + ", left as they are)") << "\n"
      << "    container: " << target.container.name << "\n"
      << "    # LOCAL:REMOTE: what reaches the container's port REMOTE goes to localhost:LOCAL\n"
      << "    ports:\n";
  for (const auto& r : target.container.routes) {
    out << "      - \"" << r.container_port << ":" << r.container_port << "\"";
    if (!r.name.empty()) out << "   # service port " << r.name;
    out << "\n";
  }
  out << "    # the command to run with the cluster's environment, started in this folder:\n"
      << "    # run: [\"./my-service\", \"--port\", \"" 
      << (target.container.routes.empty() ? 8080 : target.container.routes[0].container_port)
      << "\"]\n"
      << "    # env:   # set for the command, over the container's own\n"
      << "    #   REDIS_ADDR: \"${service:redis}:6379\"   # lpk's address of service redis\n"
      << "    #   GREETING_PATH: \"${files:/etc/demo/greeting}\"   # an imported file\n";
  return out.str();
}

}  // namespace

int run_init(const std::vector<std::string>& args) {
  InitOptions options;
  try {
    options = parse_init_options(args);
  } catch (const std::exception& e) {
    return fail(std::string(e.what()) + " (see lpk-proxy init --help)", 2);
  }
  if (options.file != "-" && fs::exists(options.file) && !options.force) {
    return fail(options.file + " exists; give --force to replace it, or --file - to print");
  }
  std::string text;
  try {
    kube::Client client(kube::load_config(options.kube));
    auto progress = console::Progress::for_stdout();
    Takeover takeover(client, progress);
    TakeoverOptions wanted;
    wanted.service = options.service;
    wanted.ns = client.config().namespace_;
    text = starter_file(takeover.locate(wanted), wanted.ns, options.kube.context);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (options.file == "-") return std::cout << text, 0;
  std::ofstream out(options.file);
  if (!(out << text) || !out.flush()) return fail("cannot write " + options.file);
  std::cout << "wrote " << options.file << " for service " << options.service << "\n";
  return 0;
}

}  // namespace lpk::proxy
