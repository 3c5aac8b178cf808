#pragma once
// An informer, as client-go's reflector runs it: list a collection, watch it from the list's
// resourceVersion, list again when the watch says 410 Gone, and after any other error wait
// (1 s doubling to 30 s, cut short by stop) and start over. The owner sees the whole collection
// on every list and each change in between.
//
// Threading: the loop runs on a thread of its own (kube::Client blocks); the handlers are called
// on that thread, one at a time, so a caller with an io_context posts what it receives to it.
// stop() (also run by the destructor) is noticed within about a second and joins the thread.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "kube/client.hpp"

namespace lpk::kube {

class Informer {
 public:
  struct Handlers {
    /// The whole collection (the list's `items`), after the first list and every relist.
    std::function<void(const nlohmann::json& items)> on_list;
    /// ADDED, MODIFIED or DELETED between lists.
    std::function<void(const WatchEvent& event)> on_event;
    /// One sentence for each failed attempt, before the wait; may be empty.
    std::function<void(const std::string& problem, std::chrono::seconds retry_in)> on_error;
  };

  /// Starts at once. `client` must outlive the informer.
  Informer(Client& client, std::string path, ListOptions options, Handlers handlers);
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  /// Asks the loop to end and returns at once (safe from any thread, e.g. an io thread that
  /// must not block); the destructor joins.
  void request_stop() { thread_.request_stop(); }
  /// request_stop(), then waits for the thread.
  void stop();

 private:
  void run(std::stop_token stop);

  Client& client_;
  std::string path_;
  ListOptions options_;
  Handlers handlers_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: it starts once everything above is built
};

}  // namespace lpk::kube
