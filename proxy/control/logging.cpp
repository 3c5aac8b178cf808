#include "proxy/control/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "proxy/control/session_paths.hpp"

namespace lpk::proxy {

std::string setup_logging(const std::string& session, const std::string& level_name) {
  auto level = spdlog::level::from_str(level_name);
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_st>();
  console->set_level(level <= spdlog::level::debug ? level : spdlog::level::warn);
  std::vector<spdlog::sink_ptr> sinks{console};

  auto dir = log_dir(session);
  std::string path;
  // Private (0700): stream logs name the services and peers of the developer's cluster.
  auto made = make_private_dir(dir);
  if (made) {
    try {
      path = (dir / "proxy.log").string();
      auto file = std::make_shared<spdlog::sinks::basic_file_sink_st>(path);
      file->set_level(level);
      sinks.push_back(file);
    } catch (const spdlog::spdlog_ex&) {
      path.clear();
    }
  }
  auto logger = std::make_shared<spdlog::logger>("lpk-proxy", sinks.begin(), sinks.end());
  logger->set_level(level);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  if (!made) {
    spdlog::warn("{}; logging to stderr only", made.error().message);
  } else if (path.empty()) {
    spdlog::warn("cannot write logs under {}; logging to stderr only", dir.string());
  }
  return path;
}

}  // namespace lpk::proxy
