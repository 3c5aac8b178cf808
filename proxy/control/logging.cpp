#include "proxy/control/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fmt/chrono.h>

#include <chrono>
#include <ctime>
#include <iterator>

#include "proxy/control/session_paths.hpp"
#include "proxy/tunnel/console_line.hpp"

namespace lpk::proxy {

namespace {

/// --log-format json: one JSON object per line, for log collectors.
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& out) override {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        msg.time.time_since_epoch()).count();
    std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    auto level = spdlog::level::to_string_view(msg.level);
    fmt::format_to(std::back_inserter(out),
                   "{{\"ts\":\"{:%Y-%m-%dT%H:%M:%S}.{:03}Z\",\"level\":\"{}\",\"msg\":{}}}\n", utc,
                   ms % 1000, std::string_view(level.data(), level.size()),
                   tunnel::json_quoted(std::string_view(msg.payload.data(), msg.payload.size())));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>();
  }
};

}  // namespace

std::unique_ptr<spdlog::formatter> json_line_formatter() {
  return std::make_unique<JsonLineFormatter>();
}

std::string setup_logging(const std::string& session, const std::string& level_name,
                          bool json) {
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
  if (json) {
    logger->set_formatter(json_line_formatter());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
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
