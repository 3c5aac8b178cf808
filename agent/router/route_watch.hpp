#pragma once
// The router's two sources of routes, each calling `on_update` with the whole RouteSet on the
// router's executor whenever it changes: the pods of the namespace (two informers, as the
// issue's contract says) or a routes file (tests and benchmarks), polled for changes.
//
// Threading: on_update runs on the executor given. stop() is idempotent; the pod watch's
// informer threads are joined by its destructor.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "agent/router/route_source.hpp"
#include "kube/informer.hpp"

namespace lpk::router {

using OnRoutes = std::function<void(RouteSet)>;

/// Reads `path` at start() and again whenever its size, mtime or inode change (checked every
/// `poll`). A file that is missing or not a valid routes document is reported (warn) and the
/// routes stay as they were.
class RoutesFileWatch {
 public:
  RoutesFileWatch(boost::asio::any_io_executor executor, std::string path, OnRoutes on_update,
                  std::chrono::milliseconds poll = std::chrono::milliseconds(100));
  void start();
  void stop();

 private:
  void check();
  void arm();

  std::string path_;
  OnRoutes on_update_;
  std::chrono::milliseconds poll_;
  boost::asio::steady_timer timer_;
  std::string stamp_;  // size, mtime and inode last read
  std::string problem_;  // the last one reported, not repeated while it lasts
  bool stopped_ = false;
};

/// Session agent pods (`lpk.dev/route-for=SERVICE`) and original pods (`original_selector`) of
/// namespace `ns`, by two informers; the routes are known once both have listed.
class PodWatch {
 public:
  PodWatch(boost::asio::any_io_executor executor, kube::Client& client, std::string ns,
           std::string service, std::string original_selector, OnRoutes on_update);
  ~PodWatch();
  void start();
  void stop();

 private:
  struct State;
  kube::Informer::Handlers handlers(bool sessions);

  boost::asio::any_io_executor executor_;
  kube::Client& client_;
  std::string path_, session_selector_, original_selector_;
  std::shared_ptr<State> state_;  // on the executor; shared with what the informers post
  std::unique_ptr<kube::Informer> sessions_, originals_;
};

}  // namespace lpk::router
