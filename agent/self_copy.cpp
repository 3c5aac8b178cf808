#include "agent/self_copy.hpp"

#include <link.h>
#include <sys/auxv.h>

#include <cstdio>
#include <stdexcept>

namespace lpk::agent {

namespace fs = std::filesystem;

namespace {

int collect(dl_phdr_info* info, size_t, void* data) {
  auto& files = *static_cast<LoadedFiles*>(data);
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  // The main program has no name here, the vDSO no file: neither is a library to copy.
  if (name.empty() || name.front() != '/' || !fs::exists(name)) return 0;
  if (info->dlpi_addr == getauxval(AT_BASE)) {
    files.loader = name;
  } else {
    files.libraries.emplace_back(name);
  }
  return 0;
}

void copy_executable(const fs::path& from, const fs::path& to) {
  auto partial = to;
  partial += ".partial";
  std::error_code ec;
  fs::copy_file(from, partial, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::permissions(partial, fs::perms(0755), ec);
  if (!ec) fs::rename(partial, to, ec);
  if (ec) throw std::runtime_error("cannot copy " + from.string() + " to " + to.string() + ": " +
                                   ec.message());
}

}  // namespace

LoadedFiles loaded_files() {
  LoadedFiles files;
  files.program = fs::read_symlink("/proc/self/exe");
  dl_iterate_phdr(collect, &files);
  return files;
}

void copy_loaded_files(const LoadedFiles& files, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir / "lib", ec);
  if (ec) throw std::runtime_error("cannot create " + (dir / "lib").string() + ": " + ec.message());
  if (files.loader.empty()) throw std::runtime_error("no dynamic loader: is lpk-agent static?");
  for (const auto& lib : files.libraries) copy_executable(lib, dir / "lib" / lib.filename());
  copy_executable(files.loader, dir / "ld.so");
  // The program last: its presence means the rest is there.
  copy_executable(files.program, dir / "lpk-agent");
}

std::vector<std::string> installed_command(const std::string& dir) {
  return {dir + "/ld.so", "--library-path", dir + "/lib", dir + "/lpk-agent"};
}

int run_install(std::span<const std::string> args) {
  if (args.size() != 1 || args[0].empty() || args[0].front() != '/') {
    std::fprintf(stderr,
                 "lpk-agent install: give the absolute directory to copy the agent into, like "
                 "`lpk-agent install /lpk-agent`\n");
    return 2;
  }
  try {
    auto files = loaded_files();
    copy_loaded_files(files, args[0]);
    std::printf("installed lpk-agent with %zu libraries in %s\n", files.libraries.size(),
                args[0].c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lpk-agent install: %s\n", e.what());
    return 1;
  }
}

}  // namespace lpk::agent
