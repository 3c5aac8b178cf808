#include "agent/router/route_watch.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "proxy/tunnel/route_labels.hpp"

namespace lpk::router {

using namespace tunnel;  // route_labels.hpp: the names both ends share

namespace asio = boost::asio;

RoutesFileWatch::RoutesFileWatch(asio::any_io_executor executor, std::string path,
                                 OnRoutes on_update, std::chrono::milliseconds poll)
    : path_(std::move(path)), on_update_(std::move(on_update)), poll_(poll), timer_(executor) {}

void RoutesFileWatch::start() {
  check();
  arm();
}

void RoutesFileWatch::stop() {
  stopped_ = true;
  timer_.cancel();
}

void RoutesFileWatch::arm() {
  if (stopped_) return;
  timer_.expires_after(poll_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    check();
    arm();
  });
}

void RoutesFileWatch::check() {
  struct stat st {};
  std::string problem;
  if (::stat(path_.c_str(), &st) != 0) {
    problem = "cannot read " + path_ + ": " + std::strerror(errno);
  } else {
    auto stamp = std::to_string(st.st_size) + "/" + std::to_string(st.st_mtim.tv_sec) + "." +
                 std::to_string(st.st_mtim.tv_nsec) + "/" + std::to_string(st.st_ino);
    if (stamp == stamp_) return;
    std::ifstream file(path_, std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    auto routes = file ? parse_routes_file(text.str(), problem) : std::nullopt;
    if (!file) problem = "cannot read " + path_;
    if (routes) {
      stamp_ = stamp;
      problem_.clear();
      on_update_(std::move(*routes));
      return;
    }
    problem = path_ + ": " + problem;
  }
  if (problem != problem_) spdlog::warn("router: {}; the routes stay as they were", problem);
  problem_ = problem;
}

namespace {

std::string name_of(const nlohmann::json& pod) {
  return kube::text_of(kube::field(kube::field(pod, "metadata"), "name"));
}

}  // namespace

struct PodWatch::State {
  OnRoutes on_update;
  PodMap sessions, originals;
  bool sessions_listed = false, originals_listed = false;
  bool stopped = false;

  void apply(bool to_sessions, const nlohmann::json* list, const kube::WatchEvent* event) {
    if (stopped) return;
    auto& pods = to_sessions ? sessions : originals;
    if (list) {
      pods.clear();
      for (const auto& pod : *list) pods[name_of(pod)] = pod;
      (to_sessions ? sessions_listed : originals_listed) = true;
    } else {
      auto name = name_of(event->object);
      if (event->type == "DELETED") {
        pods.erase(name);
      } else {
        pods[name] = event->object;
      }
    }
    if (sessions_listed && originals_listed) on_update(route_set_from_pods(sessions, originals));
  }
};

PodWatch::PodWatch(asio::any_io_executor executor, kube::Client& client, std::string ns,
                   std::string service, std::string original_selector, OnRoutes on_update)
    : executor_(std::move(executor)),
      client_(client),
      path_("/api/v1/namespaces/" + ns + "/pods"),
      session_selector_(std::string(kRouteForLabel) + "=" + service),
      original_selector_(std::move(original_selector)),
      state_(std::make_shared<State>()) {
  state_->on_update = std::move(on_update);
}

PodWatch::~PodWatch() { stop(); }

kube::Informer::Handlers PodWatch::handlers(bool sessions) {
  auto state = state_;
  auto ex = executor_;
  const char* what = sessions ? "session pods" : "original pods";
  return {
      .on_list =
          [state, ex, sessions](const nlohmann::json& items) {
            asio::post(ex, [state, sessions, items] { state->apply(sessions, &items, nullptr); });
          },
      .on_event =
          [state, ex, sessions](const kube::WatchEvent& event) {
            asio::post(ex, [state, sessions, event] { state->apply(sessions, nullptr, &event); });
          },
      .on_error =
          [what](const std::string& problem, std::chrono::seconds retry_in) {
            spdlog::warn("router: watching the {}: {}; again in {}s", what, problem,
                         retry_in.count());
          },
  };
}

void PodWatch::start() {
  sessions_ = std::make_unique<kube::Informer>(
      client_, path_, kube::ListOptions{.label_selector = session_selector_}, handlers(true));
  originals_ = std::make_unique<kube::Informer>(
      client_, path_, kube::ListOptions{.label_selector = original_selector_}, handlers(false));
}

void PodWatch::stop() {
  state_->stopped = true;  // what the informers posted and has not run yet is dropped
  if (sessions_) sessions_->request_stop();
  if (originals_) originals_->request_stop();
}

}  // namespace lpk::router
