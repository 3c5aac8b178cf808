#pragma once
// `lpk-agent install DIR`: the agent copies itself, with the dynamic loader and every shared
// library it runs with, into DIR, so that another image's container can run it from a shared
// volume (`connect --keep-image`). The loader it brings is invoked directly
// (DIR/ld.so --library-path DIR/lib DIR/lpk-agent ...), so the target image needs neither a
// libc nor a shell: distroless and scratch images work.

#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace lpk::agent {

/// The files of the running program: itself, its loader and its shared libraries (the paths
/// they were loaded by, so that the copies carry the names the binary asks for).
struct LoadedFiles {
  std::filesystem::path program;
  std::filesystem::path loader;
  std::vector<std::filesystem::path> libraries;
};

/// What this process runs from, read from the dynamic linker's own list (dl_iterate_phdr).
LoadedFiles loaded_files();

/// Copies `files` into `dir` as dir/lpk-agent, dir/ld.so and dir/lib/<name> (mode 0755), each
/// written under a temporary name and renamed, so that a reader never sees half a file.
/// Throws std::runtime_error naming the file that failed.
void copy_loaded_files(const LoadedFiles& files, const std::filesystem::path& dir);

/// The command that runs an installed agent from `dir` (before the agent's own arguments).
std::vector<std::string> installed_command(const std::string& dir);

/// Runs the mode with the arguments after `install`; returns the exit code (0 when copied,
/// 1 on failure, 2 for a bad command line).
int run_install(std::span<const std::string> args);

}  // namespace lpk::agent
